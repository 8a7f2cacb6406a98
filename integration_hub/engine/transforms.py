"""Value transforms for mapping rules, and the value helpers they share with templates.

A transform is one function registered under the name an administrator types in a Mapping Field row::

        @transform("upper")
        def _upper(value, _argument, _scope):
            return to_text(value).upper()

``parse`` turns the typed argument into what the function needs once, when the mapping is compiled, so a bad
argument fails at compile time. A None value skips the transform (and stays None) unless ``accepts_none``.
The ``template`` transform is registered by ``templating`` because it needs the sandbox.

Numbers go through ``Decimal`` built from the shortest ``repr`` of a float, so ``2.675`` rounds to ``2.68``
and ``10.005`` is ``1001`` minor units (ROUND_HALF_UP, never banker's rounding). ``round`` returns a float.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from .errors import MappingError

_ONE = Decimal(1)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
ERPNEXT_DATETIME = "%Y-%m-%d %H:%M:%S"


class Scope:
	"""Where a rule is evaluated: the whole document, the list elements being produced, and extra context."""

	__slots__ = ("_base", "_root", "context", "doc", "elements", "rows")

	def __init__(
		self,
		doc: Mapping[str, Any],
		context: Mapping[str, Any],
		elements: tuple[Any, ...] = (),
		rows: tuple[int, ...] = (),
		root: Scope | None = None,
	) -> None:
		self.doc = doc
		self.context = context
		self.elements = elements
		self.rows = rows
		self._root = root or self
		self._base: dict[str, Any] | None = None

	def child(self, element: Any, row: int) -> Scope:
		"""The scope for element ``row`` (1-based) of a list being produced."""
		return Scope(self.doc, self.context, (*self.elements, element), (*self.rows, row), self._root)

	def at_level(self, level: int) -> Any:
		"""The document for level 0, else the element bound at that list depth."""
		return self.elements[level - 1] if level else self.doc

	@property
	def current(self) -> Any:
		return self.at_level(len(self.elements))

	def variables(self, **extra: Any) -> dict[str, Any]:
		"""Names for Jinja: the document's fields, then doc, context and, inside a list, item, parent and row."""
		root = self._root
		if root._base is None:
			root._base = {**self.doc, "doc": self.doc, "context": self.context}
		names = dict(root._base)
		if self.elements:
			names["item"] = self.elements[-1]
			names["parent"] = self.at_level(len(self.elements) - 1)
			names["row"] = self.rows[-1]
		names.update(extra)
		return names


# --- value helpers -------------------------------------------------------------------------------------------


def a_type(value: Any) -> str:
	"""``a dict``, ``an int``: the value's type for messages."""
	name = type(value).__name__
	return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def to_decimal(value: Any) -> Decimal:
	"""An exact Decimal for a number or numeric string; floats use their shortest repr (2.675 → Decimal('2.675'))."""
	if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
		raise MappingError(f"{value!r} is not a number")
	try:
		number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
	except InvalidOperation:
		raise MappingError(f"{value!r} is not a number") from None
	if not number.is_finite():
		raise MappingError(f"{value!r} is not a finite number")
	return number


def to_text(value: Any) -> str:
	"""Text for a value: ISO dates, plain-notation Decimals, JSON for booleans, lists and objects."""
	if isinstance(value, str):
		return value
	if isinstance(value, (bool, Mapping, list, tuple)):
		return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))
	if isinstance(value, (date, time)):
		return value.isoformat()
	if isinstance(value, Decimal):
		return format(value, "f")
	return str(value)


def to_jsonable(value: Any) -> Any:
	"""A JSON-ready copy: Decimal → float, date/datetime/time → ISO string, tuples and iterators → lists."""
	if value is None or isinstance(value, (str, bool, int)):
		return value
	if isinstance(value, float):
		if not math.isfinite(value):
			raise MappingError(f"{value!r} cannot be sent as JSON")
		return value
	if isinstance(value, Decimal):
		return float(to_decimal(value))
	if isinstance(value, (date, time)):
		return value.isoformat()
	if isinstance(value, Mapping):
		return {
			key if isinstance(key, str) else to_text(key): to_jsonable(item) for key, item in value.items()
		}
	if isinstance(value, (list, tuple, Iterator)):
		return [to_jsonable(item) for item in value]
	raise MappingError(f"{a_type(value)} cannot be sent as JSON")


def parse_iso(text: str) -> date | datetime:
	"""An ISO 8601 date (10 characters) or date-time; a trailing ``Z`` means UTC."""
	text = text.strip()
	try:
		if len(text) == 10:
			return date.fromisoformat(text)
		if text.endswith(("Z", "z")):
			text = text[:-1] + "+00:00"
		return datetime.fromisoformat(text)
	except ValueError:
		raise MappingError(f"{text!r} is not an ISO 8601 date or date-time") from None


def to_date(value: Any) -> date:
	if isinstance(value, datetime):
		return value.date()
	if isinstance(value, date):
		return value
	if isinstance(value, str):
		return to_date(parse_iso(value))
	raise MappingError(f"{value!r} is not a date")


def to_datetime(value: Any) -> datetime:
	if isinstance(value, datetime):
		return value
	if isinstance(value, date):
		return datetime.combine(value, time())
	if isinstance(value, str):
		return to_datetime(parse_iso(value))
	raise MappingError(f"{value!r} is not a date-time")


def iso_date(value: Any) -> str | None:
	"""``YYYY-MM-DD`` for a date, datetime or ISO string (None stays None)."""
	return None if value is None else to_date(value).isoformat()


def minor_units(value: Any, decimals: int = 2) -> int:
	"""Money as an integer count of minor units, exactly: 19.99 → 1999, 10.005 → 1001 (ROUND_HALF_UP)."""
	return int(to_decimal(value).scaleb(decimals).quantize(_ONE, rounding=ROUND_HALF_UP))


def round_half_up(value: Any, digits: int = 2) -> float:
	"""Commercial rounding (2.675 → 2.68), returned as a float."""
	return float(to_decimal(value).quantize(_ONE.scaleb(-digits), rounding=ROUND_HALF_UP))


def _remote_datetime(value: Any, fmt: str, scope: Scope) -> datetime:
	"""A remote's date-time as naive local time: aware values are moved to ``context['timezone']`` when the glue
	passes one, otherwise their wall-clock time is kept. Naive values are read in ``context['remote_timezone']``
	when given (a device in another zone). ``fmt`` may be a strptime format, ``unix`` or ``unix_ms``."""
	if fmt in ("unix", "unix_ms"):
		seconds = to_decimal(value) / (1000 if fmt == "unix_ms" else 1)
		moment = datetime.fromtimestamp(float(seconds), tz=timezone.utc)
	elif fmt and isinstance(value, str):
		moment = datetime.strptime(value.strip(), fmt)
	else:
		moment = to_datetime(value)
	zone = scope.context.get("timezone")
	remote_zone = scope.context.get("remote_timezone")
	if moment.tzinfo is None and remote_zone and zone:
		moment = moment.replace(tzinfo=ZoneInfo(remote_zone))
	if moment.tzinfo is not None and zone:
		moment = moment.astimezone(ZoneInfo(zone))
	return moment.replace(tzinfo=None)


# --- the registry ----------------------------------------------------------------------------------------------

TransformFunc = Callable[[Any, Any, Scope], Any]


@dataclass(frozen=True)
class Transform:
	func: TransformFunc
	parse: Callable[[str], Any]
	accepts_none: bool


TRANSFORMS: dict[str, Transform] = {}


def _raw(argument: str) -> str:
	return argument


def _stripped(argument: str) -> str:
	return argument.strip()


def _whole_number(default: int | None) -> Callable[[str], int]:
	"""A parser for a non-negative whole-number argument, ``default`` when left empty (None: it is needed)."""

	def parse(argument: str) -> int:
		text = argument.strip()
		if not text and default is not None:
			return default
		if not text.isdigit():
			raise MappingError(f"argument {argument!r} should be a whole number of 0 or more")
		return int(text)

	return parse


def _lookup_table(argument: str) -> dict[str, Any]:
	try:
		table = json.loads(argument)
	except json.JSONDecodeError as exc:
		raise MappingError(f"lookup argument is not valid JSON: {exc}") from None
	if not isinstance(table, dict):
		raise MappingError('lookup argument should be a JSON object like {"paid": "Paid", "*": "Unpaid"}')
	return table


def transform(
	name: str, parse: Callable[[str], Any] = _raw, accepts_none: bool = False
) -> Callable[[TransformFunc], TransformFunc]:
	"""Register ``func(value, parsed_argument, scope)`` under ``name``."""

	def register(func: TransformFunc) -> TransformFunc:
		TRANSFORMS[name] = Transform(func, parse, accepts_none)
		return func

	return register


@dataclass(frozen=True)
class BoundTransform:
	"""A transform with its argument parsed, ready to apply."""

	name: str
	transform: Transform
	argument: Any

	def __call__(self, value: Any, scope: Scope) -> Any:
		if value is None and not self.transform.accepts_none:
			return None
		try:
			return self.transform.func(value, self.argument, scope)
		except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
			raise MappingError(f"transform '{self.name}' could not handle {value!r}: {exc}") from exc


def bind_transform(name: str, argument: str) -> BoundTransform | None:
	"""Look up and prepare a transform; an empty name means none. Unknown names and bad arguments raise."""
	name = name.strip().lower()
	if not name:
		return None
	entry = TRANSFORMS.get(name)
	if entry is None:
		raise MappingError(f"unknown transform {name!r} (known: {', '.join(sorted(TRANSFORMS))})")
	return BoundTransform(name, entry, entry.parse(argument))


@transform("upper")
def _upper(value: Any, _argument: str, _scope: Scope) -> str:
	return to_text(value).upper()


@transform("lower")
def _lower(value: Any, _argument: str, _scope: Scope) -> str:
	return to_text(value).lower()


@transform("strip")
def _strip(value: Any, _argument: str, _scope: Scope) -> str:
	return to_text(value).strip()


@transform("str")
def _str(value: Any, _argument: str, _scope: Scope) -> str:
	return to_text(value)


@transform("int")
def _int(value: Any, _argument: str, _scope: Scope) -> int:
	number = to_decimal(value)
	if number != number.to_integral_value():
		raise MappingError(f"{value!r} is not a whole number")
	return int(number)


@transform("float")
def _float(value: Any, _argument: str, _scope: Scope) -> float:
	return float(to_decimal(value))


@transform("boolean")
def _boolean(value: Any, _argument: str, _scope: Scope) -> bool:
	if isinstance(value, bool):
		return value
	if isinstance(value, (int, float, Decimal)) and value in (0, 1):
		return bool(value)
	text = value.strip().lower() if isinstance(value, str) else None
	if text in _TRUE or text in _FALSE:
		return text in _TRUE
	raise MappingError(f"{value!r} is not a yes/no value (use 1/0, yes/no, true/false, y/n or on/off)")


@transform("round", parse=_whole_number(2))
def _round(value: Any, digits: int, _scope: Scope) -> float:
	return round_half_up(value, digits)


@transform("minor_units", parse=_whole_number(2))
def _minor_units(value: Any, decimals: int, _scope: Scope) -> int:
	return minor_units(value, decimals)


@transform("date", parse=_stripped)
def _date(value: Any, fmt: str, _scope: Scope) -> str:
	return to_date(value).strftime(fmt or "%Y-%m-%d")


@transform("datetime", parse=_stripped)
def _datetime(value: Any, fmt: str, _scope: Scope) -> str:
	moment = to_datetime(value)
	return moment.strftime(fmt) if fmt else moment.isoformat()


@transform("parse_date", parse=_stripped)
def _parse_date(value: Any, fmt: str, scope: Scope) -> str:
	return _remote_datetime(value, fmt, scope).date().isoformat()


@transform("parse_datetime", parse=_stripped)
def _parse_datetime(value: Any, fmt: str, scope: Scope) -> str:
	return _remote_datetime(value, fmt, scope).strftime(ERPNEXT_DATETIME)


@transform("parse_time", parse=_stripped)
def _parse_time(value: Any, fmt: str, scope: Scope) -> str:
	return _remote_datetime(value, fmt, scope).strftime("%H:%M:%S")


@transform("lookup", parse=_lookup_table)
def _lookup(value: Any, table: dict[str, Any], _scope: Scope) -> Any:
	key = to_text(value)
	if key in table:
		return table[key]
	if "*" in table:
		return table["*"]
	raise MappingError(f"{key!r} is not in the lookup table (keys: {', '.join(sorted(table))})")


@transform("default", accepts_none=True)
def _default(value: Any, fallback: str, _scope: Scope) -> Any:
	return fallback if value is None or value == "" else value


@transform("constant", accepts_none=True)
def _constant(_value: Any, constant: str, _scope: Scope) -> str:
	return constant


@transform("json")
def _json(value: Any, _argument: str, _scope: Scope) -> Any:
	if isinstance(value, (dict, list)):
		return value
	if not isinstance(value, (str, bytes)):
		raise MappingError(f"{value!r} is not a JSON string")
	return json.loads(value)


@transform("split")
def _split(value: Any, separator: str, _scope: Scope) -> list[Any]:
	"""Text → list of trimmed, non-empty parts (separator default ``,``); a list passes through."""
	if isinstance(value, (list, tuple)):
		return list(value)
	parts = to_text(value).split(separator or ",")
	return [part.strip() for part in parts if part.strip()]


@transform("join")
def _join(value: Any, separator: str, _scope: Scope) -> str:
	"""List → text joined with the separator (default ``,``), skipping None; text passes through."""
	if isinstance(value, str):
		return value
	if not isinstance(value, (list, tuple)):
		raise MappingError(f"{value!r} is not a list")
	return (separator or ",").join(to_text(item) for item in value if item is not None)


@transform("truncate", parse=_whole_number(None))
def _truncate(value: Any, limit: int, _scope: Scope) -> str:
	return to_text(value)[:limit]
