"""What one template render or expression evaluation may cost.

A budget is set for each render: ``steps`` (loop iterations, calls and filters) and ``text`` (the largest
string, list or rendered output allowed). Operations whose result could be huge are checked *before*
they run (``'a' * 2**30``, ``'%999999999s' % x``, ``replace``/``join`` blow-ups, big powers); every other
call, filter and concatenation is checked on its result, so growth stays bounded step by step. Conditions
get a much smaller budget than body templates, so evaluating them stays cheap.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from string import Formatter
from typing import Any

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from .errors import MappingError

TEMPLATE_STEPS = 1_000_000
TEMPLATE_TEXT = 4_000_000
CONDITION_STEPS = 10_000
CONDITION_TEXT = 100_000
MAX_INT_BITS = 100_000
MAX_FORMAT_WIDTH = 10_000
PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?")
SIZED = (str, bytes, list, tuple, dict, set, frozenset)
BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
	"*": operator.mul,
	"**": operator.pow,
	"+": operator.add,
	"%": operator.mod,
}
REFUSED_METHODS = frozenset({"expandtabs"})


@dataclass
class Budget:
	steps: int
	text: int

	def spend(self, steps: int = 1) -> None:
		self.steps -= steps
		if self.steps < 0:
			raise MappingError("the template used up its render budget (too many loop iterations or calls)")


CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("template_budget", default=None)


@contextmanager
def budget(steps: int, text: int) -> Iterator[Budget]:
	"""A fresh budget for one render or evaluation (nested renders get their own)."""
	token = CURRENT.set(Budget(steps, text))
	try:
		yield CURRENT.get()
	finally:
		CURRENT.reset(token)


def current() -> Budget:
	return CURRENT.get() or Budget(TEMPLATE_STEPS, TEMPLATE_TEXT)


def refuse_size(size: int, unit: str = "characters") -> None:
	limit = current().text
	if size > limit:
		raise MappingError(f"a value of {size} {unit} is too large (the limit is {limit})")


def checked(value: Any) -> Any:
	"""``value`` if it is within the budget's size limit."""
	if isinstance(value, SIZED):
		refuse_size(len(value), "characters or items")
	elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
		raise MappingError(
			f"a number of {value.bit_length()} bits is too large (the limit is {MAX_INT_BITS})"
		)
	return value


def check_binop(symbol: str, left: Any, right: Any) -> None:
	"""Refuse ``left <symbol> right`` before it runs when its result would be too large."""
	if symbol == "*":
		check_repeat(left, right)
	elif symbol == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
		if abs(left).bit_length() * right > MAX_INT_BITS:
			raise MappingError(f"{left} ** {right} is too large")
	elif symbol == "+" and isinstance(left, SIZED) and isinstance(right, SIZED):
		refuse_size(len(left) + len(right))
	elif symbol == "%" and isinstance(left, str):
		check_printf(left)


def check_repeat(left: Any, right: Any) -> None:
	if isinstance(left, int) and isinstance(right, int):
		if left.bit_length() + right.bit_length() > MAX_INT_BITS:
			raise MappingError("the product is too large")
		return
	sequence, count = (left, right) if isinstance(right, int) else (right, left)
	if isinstance(sequence, SIZED) and isinstance(count, int):
		refuse_size(len(sequence) * max(count, 0))


def binop(symbol: str, left: Any, right: Any) -> Any:
	check_binop(symbol, left, right)
	return checked(BINARY_OPERATORS[symbol](left, right))


def check_printf(template: str) -> None:
	"""Refuse %-format widths and precisions that would pad a value to a huge size."""
	for match in PRINTF_SPEC.finditer(template):
		check_widths(match.groups())


def check_format(template: str) -> None:
	"""The same for ``str.format`` specs; widths given by arguments (``{:{w}}``) are refused."""
	for _literal, _field, spec, _conversion in Formatter().parse(template):
		if spec and "{" in spec:
			raise MappingError("format widths taken from arguments are not allowed in templates")
		check_widths(re.findall(r"\d+", spec or ""))


def check_widths(widths: Iterable[str | None]) -> None:
	for width in widths:
		if width == "*":
			raise MappingError("format widths taken from arguments are not allowed in templates")
		if width and int(width) > MAX_FORMAT_WIDTH:
			raise MappingError(f"a format width of {width} is too large (the limit is {MAX_FORMAT_WIDTH})")


def check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
	if isinstance(text, str) and isinstance(old, str) and isinstance(new, str) and old:
		hits = text.count(old) if count is None or count < 0 else min(count, text.count(old))
		refuse_size(len(text) + hits * max(len(new) - len(old), 0))


def joined(separator: Any, items: Any) -> list:
	"""The items of a join, refused when the joined text would be too large."""
	materialized = list(items)
	total = sum(len(item) if isinstance(item, str) else len(str(item)) for item in materialized)
	refuse_size(total + len(str(separator)) * max(len(materialized) - 1, 0))
	return materialized


def check_call(target: Any, args: tuple, kwargs: dict) -> None:
	"""Refuse a method call on a string or list whose result would be too large."""
	method = getattr(target, "__wrapped__", target)
	owner = getattr(method, "__self__", None)
	name = getattr(method, "__name__", "")
	if not isinstance(owner, SIZED):
		return
	if name in REFUSED_METHODS:
		raise MappingError(f"{type(owner).__name__}.{name}() is not allowed in templates")
	if isinstance(owner, str) and name in ("format", "format_map"):
		check_format(owner)
	if isinstance(owner, str) and name == "replace":
		check_replace(owner, *args, **kwargs)
	if isinstance(owner, str) and name == "join" and args:
		joined(owner, args[0])
	for value in (*args, *kwargs.values()):
		if isinstance(value, int) and value > current().text:
			raise MappingError(f"the argument {value} is too large (the limit is {current().text})")


def bounded_filter(name: str, function: Callable) -> Callable:
	"""``function`` (a Jinja filter) spending a step, with its input checked first and its result after."""
	position = 1 if getattr(function, "jinja_pass_arg", None) else 0
	pre_check = PRE_CHECKS.get(name)

	@functools.wraps(function)
	def run(*args: Any, **kwargs: Any) -> Any:
		current().spend()
		if pre_check is not None:
			head, value, rest = args[:position], args[position], args[position + 1 :]
			args = (*head, pre_check(value, *rest, **kwargs), *rest)
		return checked(function(*args, **kwargs))

	return run


def size_arguments(value: Any, *args: Any, **kwargs: Any) -> Any:
	"""For filters whose number argument is an output width or count (center, batch, slice, wordwrap)."""
	for number in (*args, *kwargs.values()):
		if isinstance(number, int) and number > current().text:
			raise MappingError(f"the argument {number} is too large (the limit is {current().text})")
	return value


def printf_value(value: Any, *args: Any, **kwargs: Any) -> Any:
	if isinstance(value, str):
		check_printf(value)
	return value


def replace_value(value: Any, old: Any, new: Any, count: Any = None) -> Any:
	check_replace(value, old, new, count)
	return value


def join_value(value: Any, d: str = "", attribute: Any = None) -> Any:
	if attribute is not None:
		raise MappingError("join(attribute=...) is not allowed in templates; use map(attribute=...)|join")
	return joined(d, value)


def indent_value(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
	if isinstance(value, str):
		prefix = width if isinstance(width, int) else len(str(width))
		refuse_size(len(value) + (value.count("\n") + 1) * max(prefix, 0))
	return value


PRE_CHECKS: dict[str, Callable[..., Any]] = {
	"center": size_arguments,
	"batch": size_arguments,
	"slice": size_arguments,
	"wordwrap": size_arguments,
	"format": printf_value,
	"replace": replace_value,
	"join": join_value,
	"indent": indent_value,
}


def counted(iterable: Any) -> Iterator[Any]:
	"""A loop's iterable, spending one step per iteration."""
	spend = current().spend
	for item in iterable:
		spend()
		yield item


def concatenated(parts: list) -> str:
	"""``a ~ b ~ c``, refused before joining when the result would be too large."""
	return "".join(str(part) for part in joined("", ["" if part is None else part for part in parts]))


class BudgetTransformer(NodeTransformer):
	"""Routes every ``for`` loop through :func:`counted` and every ``~`` through :func:`concatenated`."""

	def visit_For(self, node: nodes.For) -> nodes.Node:
		self.generic_visit(node)
		node.iter = filter_node(node.iter, "_ih_counted")
		return node

	def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
		self.generic_visit(node)
		return filter_node(nodes.List(node.nodes, lineno=node.lineno), "_ih_concatenated")


def filter_node(node: nodes.Expr, name: str) -> nodes.Filter:
	return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


BUDGET_FILTERS = {"_ih_counted": counted, "_ih_concatenated": concatenated}
