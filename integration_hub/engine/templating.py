"""Sandboxed Jinja2 for mapping expressions, body templates, conditions and small string templates.

Everything runs in an ``ImmutableSandboxedEnvironment``: no access to ``_private`` or dunder attributes, no
mutation of the document. Unsafe access raises at once (a ``MappingError`` saying "unsafe …") instead of
Jinja's default of an undefined value that may render as an empty string.

On dicts, ``doc.items`` means the ``items`` key (ERPNext's child table), not ``dict.items``. A missing name
is falsy and compares unequal in expressions, but rendering it is an error, so an HTTP path never silently
loses a segment; ``None`` renders as an empty string.

Helpers: ``tojson`` (Decimal and dates handled), ``minor_units(value, decimals=2)`` and ``iso_date(value)``
are available as filters and functions.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from jinja2 import TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import MappingError
from .transforms import Scope, a_type, iso_date, minor_units, to_jsonable, transform

T = TypeVar("T")


class _RenderUndefined(Undefined):
	__slots__ = ()
	__str__ = Undefined._fail_with_undefined_error


class Sandbox(ImmutableSandboxedEnvironment):
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


SANDBOX = Sandbox(
	undefined=_RenderUndefined, finalize=_blank_none, autoescape=False, keep_trailing_newline=True
)
SANDBOX.filters.update(tojson=_tojson, minor_units=minor_units, iso_date=iso_date)
SANDBOX.globals.update(minor_units=minor_units, iso_date=iso_date)


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
	"""A compiled sandboxed Jinja2 expression; a missing value evaluates to None."""

	__slots__ = ("_compiled", "source")

	def __init__(self, source: str) -> None:
		self.source = source
		self._compiled = _guard("expression", source, lambda: SANDBOX.compile_expression(source))

	def evaluate(self, variables: Mapping[str, Any]) -> Any:
		return _guard("expression", self.source, lambda: self._compiled(variables))


class TextTemplate:
	"""A compiled sandboxed Jinja2 template."""

	__slots__ = ("_compiled", "source")

	def __init__(self, source: str) -> None:
		self.source = source
		self._compiled = _guard("template", source, lambda: SANDBOX.from_string(source))

	def render(self, variables: Mapping[str, Any]) -> str:
		return _guard("template", self.source, lambda: self._compiled.render(variables))


class Condition:
	"""A mapping's condition, called with the document (and optionally the context); empty means always."""

	__slots__ = ("_expression",)

	def __init__(self, expression: str) -> None:
		self._expression = Expression(expression) if expression.strip() else None

	def __call__(self, doc: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> bool:
		if self._expression is None:
			return True
		return bool(self._expression.evaluate({"doc": doc, "context": context or {}}))


def compile_condition(expression: str) -> Condition:
	"""Compile e.g. ``doc.docstatus == 1 and doc.grand_total > 0``; bad syntax raises MappingError now."""
	return Condition(expression)


@functools.lru_cache(maxsize=512)
def _cached_template(template: str) -> TextTemplate:
	return TextTemplate(template)


def check_template(template: str) -> None:
	"""Raise MappingError if ``template`` does not compile: validation without made-up variables to render with."""
	_cached_template(template)


def render_template(template: str, variables: Mapping[str, Any]) -> str:
	"""Render a small template such as ``/api/resource/Sales Invoice/{{ remote_id }}``, compiled once per string."""
	return _cached_template(template).render(variables)


@transform("template", parse=TextTemplate, accepts_none=True)
def _template(value: Any, template: TextTemplate, scope: Scope) -> str:
	"""Render the argument with ``value``, ``doc``, ``item``, ``context`` (and the document's fields)."""
	return template.render(scope.variables(value=value))
