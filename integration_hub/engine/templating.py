"""Sandboxed Jinja2 for mapping expressions, body templates, conditions and small string templates.

Everything runs in an ``ImmutableSandboxedEnvironment``: no access to ``_private`` or dunder attributes, no
mutation of the document. Unsafe access raises at once (a ``MappingError`` saying "unsafe …") instead of
Jinja's default of an undefined value that may render as an empty string.

On dicts, ``doc.items`` means the ``items`` key (ERPNext's child table), not ``dict.items``. A missing name
is falsy and compares unequal in expressions, but rendering it is an error, so an HTTP path never silently
loses a segment; ``None`` renders as an empty string.

Helpers: ``tojson`` (Decimal and dates handled), ``minor_units(value, decimals=2)`` and ``iso_date(value)``
are available as filters and functions.

Every render and evaluation runs on a budget (:mod:`.template_budget`): loop iterations, calls and the size
of values and output are bounded, so a template cannot take the worker down. :func:`render_path` renders
request paths with every substituted value percent-encoded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from jinja2 import TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import MappingError
from .template_budget import (
	BINARY_OPERATORS,
	BUDGET_FILTERS,
	CONDITION_STEPS,
	CONDITION_TEXT,
	TEMPLATE_STEPS,
	TEMPLATE_TEXT,
	BudgetTransformer,
	binop,
	bounded_filter,
	budget,
	check_call,
	checked,
	current,
)
from .transforms import Scope, a_type, iso_date, minor_units, to_jsonable, transform

T = TypeVar("T")


class _RenderUndefined(Undefined):
	__slots__ = ()
	__str__ = Undefined._fail_with_undefined_error


class Sandbox(ImmutableSandboxedEnvironment):
	intercepted_binops = frozenset(BINARY_OPERATORS)

	def from_string(self, source: str | nodes.Template, *args: Any, **kwargs: Any) -> Any:
		"""Compile with every loop and ``~`` routed through the render budget (expressions too)."""
		tree = self.parse(source) if isinstance(source, str) else source
		return super().from_string(BudgetTransformer().visit(tree), *args, **kwargs)

	def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
		return binop(operator, left, right)

	def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
		current().spend()
		check_call(__obj, args, kwargs)
		return checked(super().call(__context, __obj, *args, **kwargs))

	def getattr(self, obj: Any, attribute: str) -> Any:
		"""Prefer a dict's key over its attribute, so ``doc.items`` is the child table."""
		if isinstance(obj, Mapping) and attribute in obj:
			return obj[attribute]
		return super().getattr(obj, attribute)

	def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
		raise SecurityError(f"access to attribute {attribute!r} of {a_type(obj)} is not allowed")


def _tojson(value: Any) -> str:
	return json.dumps(to_jsonable(None if isinstance(value, Undefined) else value), ensure_ascii=False)


def _blank_none(value: Any) -> Any:
	return "" if value is None else value


def _path_value(value: Any) -> str:
	"""A value rendered into a request path: percent-encoded, so it stays inside its segment."""
	return quote(str(_blank_none(value)), safe="")


def _sandbox(finalize: Callable[[Any], Any]) -> Sandbox:
	environment = Sandbox(
		undefined=_RenderUndefined, finalize=finalize, autoescape=False, keep_trailing_newline=True
	)
	filters = {**environment.filters, "tojson": _tojson, "minor_units": minor_units, "iso_date": iso_date}
	environment.filters = {name: bounded_filter(name, function) for name, function in filters.items()}
	environment.filters.update(BUDGET_FILTERS)
	environment.globals.update(minor_units=minor_units, iso_date=iso_date)
	environment.globals.pop("lipsum", None)
	return environment


SANDBOX = _sandbox(_blank_none)
PATH_SANDBOX = _sandbox(_path_value)


def _short(source: str) -> str:
	return repr(source if len(source) <= 80 else source[:77] + "...")


def _guard(kind: str, source: str, run: Callable[[], T]) -> T:
	"""Run Jinja code, turning whatever it raises into a MappingError: an admin's expression can raise anything."""
	try:
		return run()
	except SecurityError as exc:
		raise MappingError(f"unsafe {kind} {_short(source)}: {exc}") from None
	except TemplateSyntaxError as exc:
		raise MappingError(
			f"{kind} {_short(source)} has a syntax error on line {exc.lineno}: {exc.message}"
		) from None
	except Exception as exc:
		detail = exc.message if isinstance(exc, MappingError) else f"{type(exc).__name__}: {exc}"
		raise MappingError(f"{kind} {_short(source)} failed: {detail}") from exc


class Expression:
	"""A compiled sandboxed Jinja2 expression; a missing value evaluates to None.

	``limits`` is the (steps, text size) budget of one evaluation.
	"""

	__slots__ = ("_compiled", "_limits", "source")

	def __init__(self, source: str, limits: tuple[int, int] = (TEMPLATE_STEPS, TEMPLATE_TEXT)) -> None:
		self.source = source
		self._limits = limits
		self._compiled = _guard("expression", source, lambda: SANDBOX.compile_expression(source))

	def evaluate(self, variables: Mapping[str, Any]) -> Any:
		return _guard("expression", self.source, lambda: self._evaluate(variables))

	def _evaluate(self, variables: Mapping[str, Any]) -> Any:
		with budget(*self._limits):
			return checked(self._compiled(variables))


class TextTemplate:
	"""A compiled sandboxed Jinja2 template (of ``environment``: SANDBOX, or PATH_SANDBOX for paths)."""

	__slots__ = ("_compiled", "source")

	def __init__(self, source: str, environment: Sandbox = SANDBOX) -> None:
		self.source = source
		self._compiled = _guard("template", source, lambda: environment.from_string(source))

	def render(self, variables: Mapping[str, Any]) -> str:
		return _guard("template", self.source, lambda: self._render(variables))

	def _render(self, variables: Mapping[str, Any]) -> str:
		"""Render on a fresh budget, refusing output past its text limit as it streams."""
		with budget(TEMPLATE_STEPS, TEMPLATE_TEXT) as limits:
			parts: list[str] = []
			size = 0
			for chunk in self._compiled.generate(variables):
				size += len(chunk)
				if size > limits.text:
					raise MappingError(f"the rendered text is too long (over {limits.text} characters)")
				parts.append(chunk)
			return "".join(parts)


class Condition:
	"""A mapping's condition, called with the document (and optionally the context); empty means always."""

	__slots__ = ("_expression",)

	def __init__(self, expression: str) -> None:
		limits = (CONDITION_STEPS, CONDITION_TEXT)
		self._expression = Expression(expression, limits) if expression.strip() else None

	def __call__(self, doc: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> bool:
		if self._expression is None:
			return True
		return bool(self._expression.evaluate({"doc": doc, "context": context or {}}))


def compile_condition(expression: str) -> Condition:
	"""Compile e.g. ``doc.docstatus == 1 and doc.grand_total > 0``; bad syntax raises MappingError now."""
	return Condition(expression)


@functools.lru_cache(maxsize=512)
def _cached_template(template: str, for_path: bool = False) -> TextTemplate:
	return TextTemplate(template, PATH_SANDBOX if for_path else SANDBOX)


def check_template(template: str) -> None:
	"""Raise MappingError if ``template`` does not compile: validation without made-up variables to render with."""
	_cached_template(template)


def render_template(template: str, variables: Mapping[str, Any]) -> str:
	"""Render a small template such as ``/api/resource/Sales Invoice/{{ remote_id }}``, compiled once per string."""
	return _cached_template(template).render(variables)


def render_path(template: str, variables: Mapping[str, Any]) -> str:
	"""Render a request path such as ``/contacts/external/{{ doc.name }}``, safe from path injection.

	Every value substituted is percent-encoded (``/``, ``?``, ``#``, ``&`` included), so it stays inside its
	segment or query value; the template's own text is kept. A ``.`` or ``..`` segment in the result is
	refused.
	"""
	path = _cached_template(template, for_path=True).render(variables)
	for segment in urlsplit(path).path.split("/"):
		if unquote(segment) in (".", ".."):
			raise MappingError(f"path {_short(path)} has a {segment!r} segment; dot segments are not allowed")
	return path


@transform("template", parse=TextTemplate, accepts_none=True)
def _template(value: Any, template: TextTemplate, scope: Scope) -> str:
	"""Render the argument with ``value``, ``doc``, ``item``, ``context`` (and the document's fields)."""
	return template.render(scope.variables(value=value))
