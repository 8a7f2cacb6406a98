"""Field mappings: a document into a payload (outbound), a remote record into a document dict (inbound).

A Mapping is a list of ``FieldRule`` rows and/or a body template. ``compile_mapping`` validates and compiles
them once; ``CompiledMapping.apply`` then parses nothing and can be reused (and shared between threads).

Paths
	``customer``, ``customer_address.city``, ``items[0].rate``: keys and list indexes (negative counts from
	the end). ``items[].item_code``: ``[]`` walks every element; a missing key or index gives None.
Lists
	Rules whose target contains ``lines[]`` build one output list. Its length comes from the rules whose source
	has a ``[]`` at the same depth (``items[].item_code``): they must all read the same list, and element i of
	it produces element i of ``lines``. The block's other rules (fields, paths without ``[]``, constants,
	expressions) are evaluated for every element; field and path sources are read from the document root, so
	``lines[].currency`` from ``currency`` repeats the document's currency on each line. Lists nest to any
	depth: ``lines[].taxes[].rate`` from ``items[].taxes[].rate``. A missing source list gives an empty list. A
	source with more ``[]`` than its target gives a list value, flattened like JMESPath.
Expressions
	Sandboxed Jinja2 expressions see the document's fields by name, plus ``doc``, ``context`` and, inside a
	list, ``item`` (the current source element), ``parent`` (the record holding that list) and ``row`` (1-based).
Values
	``default`` replaces a None/missing source value before the transform; ``required`` rejects None or "" after
	it. Output is JSON-ready: Decimal → float, date/datetime → ISO 8601 strings unless a transform formats them.
Body template
	A Jinja2 template (``doc``, ``context``) that renders a JSON object. With rules as well, the rules are applied
	afterwards and merged into it: objects merge key by key, anything else (values, whole lists) is replaced.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from .errors import MappingError
from .templating import (
	Condition,
	Expression,
	TextTemplate,
	check_template,
	compile_condition,
	render_path,
	render_template,
)
from .transforms import BoundTransform, Scope, a_type, bind_transform, to_jsonable

__all__ = [
	"CompiledMapping",
	"Condition",
	"FieldRule",
	"canonical_json",
	"check_template",
	"compile_condition",
	"compile_mapping",
	"extract",
	"parse_path",
	"payload_hash",
	"render_path",
	"render_template",
	"walk",
]

SourceType = Literal["field", "path", "expression", "constant"]


@dataclass(frozen=True)
class FieldRule:
	"""One Mapping Field row, as the administrator typed it."""

	target: str
	source: str = ""
	source_type: SourceType = "field"
	transform: str = ""
	argument: str = ""
	required: bool = False
	default: Any = None


# --- paths ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
	name: str


@dataclass(frozen=True)
class Index:
	position: int


@dataclass(frozen=True)
class Each:
	"""``[]``: every element of a list."""


EACH = Each()
Step = Key | Index | Each
Path = tuple[Step, ...]

_NAME = r"[^.\[\]\s]+"
_SEGMENT = re.compile(rf"({_NAME})((?:\[(?:-?\d+)?\])*)")
_MARKER = re.compile(r"\[(-?\d*)\]")


def parse_path(text: str) -> Path:
	"""``a.b[].c[0]`` → ``(Key('a'), Key('b'), EACH, Key('c'), Index(0))``."""
	steps: list[Step] = []
	for part in text.strip().split("."):
		match = _SEGMENT.fullmatch(part)
		if match is None:
			raise MappingError(
				f"bad path {text!r}: expected names joined by '.', each optionally followed by [] or [n]"
			)
		steps.append(Key(match[1]))
		steps.extend(Index(int(marker)) if marker else EACH for marker in _MARKER.findall(match[2]))
	return tuple(steps)


def path_text(steps: Path) -> str:
	parts: list[str] = []
	for step in steps:
		if isinstance(step, Key):
			parts.append(f".{step.name}" if parts else step.name)
		else:
			parts.append("[]" if step == EACH else f"[{step.position}]")
	return "".join(parts)


def _as_list(value: Any) -> list[Any] | tuple[Any, ...]:
	if not isinstance(value, (list, tuple)):
		raise MappingError(f"expected a list but found {a_type(value)}")
	return value


def walk(value: Any, steps: Path) -> Any:
	"""Follow ``steps`` from ``value``; None when a key or index is missing, a (flattened) list after ``[]``."""
	for position, step in enumerate(steps):
		if value is None:
			return None
		if isinstance(step, Key):
			if not isinstance(value, Mapping):
				raise MappingError(f"cannot read {step.name!r} from {a_type(value)}")
			value = value.get(step.name)
		elif isinstance(step, Index):
			elements = _as_list(value)
			value = elements[step.position] if -len(elements) <= step.position < len(elements) else None
		else:
			rest = steps[position + 1 :]
			if EACH in rest:
				return [found for element in _as_list(value) for found in walk(element, rest) or ()]
			return [walk(element, rest) for element in _as_list(value)]
	return value


# --- compiled form -------------------------------------------------------------------------------------------


def _describe(rule: FieldRule) -> str:
	return f"{rule.target!r} (from {rule.source!r})" if rule.source else repr(rule.target)


def _where(scope: Scope) -> str:
	if not scope.rows:
		return ""
	nested = "".join(f", sub-row {row}" for row in scope.rows[1:])
	return f" in row {scope.rows[0]}{nested}"


@dataclass(frozen=True)
class _Leaf:
	"""A rule producing one value at ``target`` (keys relative to the element being built)."""

	rule: FieldRule
	target: tuple[str, ...]
	read: Callable[[Scope], Any]
	transform: BoundTransform | None

	def produce(self, scope: Scope) -> Any:
		rule = self.rule
		try:
			value = self.read(scope)
			if value is None:
				value = rule.default
			if self.transform is not None:
				value = self.transform(value, scope)
			value = to_jsonable(value)
		except MappingError as exc:
			raise MappingError(
				f"Field {_describe(rule)}{_where(scope)}: {exc.message}", field=rule.target
			) from exc
		if rule.required and (value is None or value == ""):
			raise MappingError(f"Required field {_describe(rule)} is empty{_where(scope)}", field=rule.target)
		return value


@dataclass(frozen=True)
class _Block:
	"""A list at ``target``, one element per element of the source list at ``source``."""

	target: tuple[str, ...]
	source: Path
	label: str
	entries: tuple[_Leaf | _Block, ...]

	def produce(self, scope: Scope) -> list[Any]:
		try:
			elements = walk(scope.current, self.source)
			elements = () if elements is None else _as_list(elements)
		except MappingError as exc:
			source = path_text((*self.source, EACH))
			raise MappingError(
				f"List {self.label!r} (from {source!r}){_where(scope)}: {exc.message}", field=self.label
			) from exc
		return [_fill(self.entries, scope.child(element, row)) for row, element in enumerate(elements, 1)]


def _fill(entries: tuple[_Leaf | _Block, ...], scope: Scope) -> Any:
	"""Build one element (or the whole output) from its entries, in rule order."""
	output: dict[str, Any] = {}
	for entry in entries:
		value = entry.produce(scope)
		if not entry.target:
			return value
		node = output
		for key in entry.target[:-1]:
			node = node.setdefault(key, {})
		node[entry.target[-1]] = value
	return output


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
	for key, value in overlay.items():
		if isinstance(value, dict) and isinstance(base.get(key), dict):
			_merge(base[key], value)
		else:
			base[key] = value


def _snippet(text: str, position: int) -> str:
	return repr(text[max(0, position - 30) : position] + "<<here>>" + text[position : position + 30])


def _reject_constant(name: str) -> NoReturn:
	raise MappingError(f"Body template rendered {name}, which is not valid JSON", field="body_template")


class CompiledMapping:
	"""Compiled rules and/or body template. ``apply`` keeps no state between calls."""

	__slots__ = ("_entries", "_template", "body_template", "rules")

	def __init__(
		self,
		rules: tuple[FieldRule, ...],
		body_template: str,
		entries: tuple[_Leaf | _Block, ...],
		template: TextTemplate | None,
	) -> None:
		self.rules = rules
		self.body_template = body_template
		self._entries = entries
		self._template = template

	def apply(self, source: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any]:
		"""Map ``source`` (a document dict or remote record); ``context`` is exposed to expressions and templates."""
		if not isinstance(source, Mapping):
			raise MappingError(f"expected a record (an object) to map, got {a_type(source)}")
		scope = Scope(source, context or {})
		output = _render_body(self._template, scope) if self._template is not None else {}
		if self._entries:
			_merge(output, _fill(self._entries, scope))
		return output


def _render_body(template: TextTemplate, scope: Scope) -> dict[str, Any]:
	try:
		rendered = template.render({"doc": scope.doc, "context": scope.context})
	except MappingError as exc:
		raise MappingError(f"Body template: {exc.message}", field="body_template") from exc
	try:
		body = json.loads(rendered, parse_constant=_reject_constant)
	except json.JSONDecodeError as exc:
		raise MappingError(
			f"Body template did not render valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}, "
			f"near {_snippet(rendered, exc.pos)}",
			field="body_template",
		) from None
	if not isinstance(body, dict):
		raise MappingError(
			f"Body template must render a JSON object, not {a_type(body)}", field="body_template"
		)
	return body


# --- compiling -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
	"""A rule on its way down the list levels: its target and unbound source steps relative to the current level."""

	number: int
	rule: FieldRule
	transform: BoundTransform | None
	target: Path
	path: Path = ()
	level: int = 0
	read: Callable[[Scope], Any] | None = None

	def reader(self) -> Callable[[Scope], Any]:
		if self.read is not None:
			return self.read
		path, level = self.path, self.level
		return lambda scope: walk(scope.at_level(level), path)

	def list_prefix(self) -> Path | None:
		"""The path to the source's next list, when it has one."""
		if self.read is None and EACH in self.path:
			return self.path[: self.path.index(EACH)]
		return None

	def fail(self, reason: str) -> NoReturn:
		raise MappingError(f"Rule {self.number} ({self.rule.target!r}): {reason}", field=self.rule.target)


_FIELDNAME = re.compile(_NAME)


def _target_path(text: str) -> Path:
	if not text.strip():
		raise MappingError("the target is empty")
	steps = parse_path(text)
	if any(isinstance(step, Index) for step in steps):
		raise MappingError(f"target {text!r} may use [] but not [n]")
	if any(step == EACH and after == EACH for step, after in itertools.pairwise(steps)):
		raise MappingError(f"target {text!r}: lists of lists are not supported")
	return steps


def _prepare(number: int, rule: FieldRule) -> _Pending:
	try:
		pending = _Pending(
			number, rule, bind_transform(rule.transform, rule.argument), _target_path(rule.target)
		)
		source = rule.source.strip()
		if rule.source_type == "constant":
			literal = rule.source
			return replace(pending, read=lambda _scope: literal)
		if rule.source_type not in ("field", "path", "expression"):
			raise MappingError(f"unknown source type {rule.source_type!r}")
		if not source:
			return replace(pending, read=lambda _scope: None)
		if rule.source_type == "expression":
			expression = Expression(source)
			return replace(pending, read=lambda scope: expression.evaluate(scope.variables()))
		if rule.source_type == "field" and not _FIELDNAME.fullmatch(source):
			raise MappingError(f"{source!r} is not a plain field name; use source type 'path'")
		return replace(pending, path=parse_path(source))
	except MappingError as exc:
		raise MappingError(f"Rule {number} ({rule.target!r}): {exc.message}", field=rule.target) from None


def _check_targets(pending: list[_Pending]) -> None:
	"""No two rules may write the same target, or one inside what another writes whole."""
	seen: dict[Path, _Pending] = {}
	for item in pending:
		if item.target in seen:
			item.fail(f"the same target is set by rule {seen[item.target].number}")
		seen[item.target] = item
	for item in pending:
		for size in range(1, len(item.target)):
			outer = seen.get(item.target[:size])
			if outer is not None:
				item.fail(f"the target is inside {outer.rule.target!r}, which rule {outer.number} sets")


def _compile_level(pending: list[_Pending], outer: str = "") -> tuple[_Leaf | _Block, ...]:
	"""Leaves and list blocks for one level, in the order their first rule appears; ``outer`` labels the level."""
	entries: list[_Leaf | Path] = []
	groups: dict[Path, list[_Pending]] = {}
	for item in pending:
		if EACH not in item.target:
			keys = tuple(step.name for step in item.target if isinstance(step, Key))
			entries.append(_Leaf(item.rule, keys, item.reader(), item.transform))
			continue
		key = item.target[: item.target.index(EACH)]
		if key not in groups:
			groups[key] = []
			entries.append(key)
		groups[key].append(item)
	return tuple(
		entry
		if isinstance(entry, _Leaf)
		else _compile_block(entry, groups[entry], outer + path_text((*entry, EACH)))
		for entry in entries
	)


def _compile_block(key: Path, members: list[_Pending], label: str) -> _Block:
	"""The list ``label`` (``lines[]``), zipped with the one source list its rules read."""
	listed = [(item, prefix) for item in members if (prefix := item.list_prefix()) is not None]
	if not listed:
		members[0].fail(
			f"no rule for {label!r} reads a list (like 'items[].item_code'), so its length is unknown"
		)
	first, prefix = listed[0]
	for item, other in listed[1:]:
		if other != prefix:
			item.fail(
				f"rules for {label!r} must read the same list, but this one reads {path_text((*other, EACH))!r} "
				f"and rule {first.number} reads {path_text((*prefix, EACH))!r}"
			)
	inner = len(key) + 1
	children = [
		replace(item, target=item.target[inner:], path=item.path[len(prefix) + 1 :], level=item.level + 1)
		if item.list_prefix() is not None
		else replace(item, target=item.target[inner:])
		for item in members
	]
	return _Block(
		tuple(step.name for step in key if isinstance(step, Key)),
		prefix,
		label,
		_compile_level(children, label + "."),
	)


def compile_mapping(rules: Sequence[FieldRule], body_template: str = "") -> CompiledMapping:
	"""Validate and compile rules and/or a body template; every configuration error surfaces here."""
	pending = [_prepare(number, rule) for number, rule in enumerate(rules, 1)]
	_check_targets(pending)
	template = None
	if body_template.strip():
		try:
			template = TextTemplate(body_template)
		except MappingError as exc:
			raise MappingError(f"Body template: {exc.message}", field="body_template") from None
	return CompiledMapping(tuple(rules), body_template, _compile_level(pending), template)


# --- extraction and hashing ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _jmespath(expression: str) -> ParsedResult:
	try:
		return jmespath.compile(expression)
	except JMESPathError as exc:
		raise MappingError(f"bad extraction expression {expression!r}: {exc}") from None


def extract(data: Any, expression: str) -> Any:
	"""JMESPath extraction, e.g. the remote id from a response (``data.invoice.id``); empty expression → None."""
	expression = expression.strip()
	if not expression:
		return None
	try:
		return _jmespath(expression).search(data)
	except JMESPathError as exc:
		raise MappingError(f"extracting {expression!r} failed: {exc}") from None


def canonical_json(payload: Any) -> str:
	"""Sorted keys, compact separators, ASCII only, Decimal → float, dates → ISO strings."""
	return json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)


def payload_hash(payload: Any) -> str:
	"""sha256 hex of ``canonical_json``: equal for equal content whatever the key order."""
	return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
