"""Watermarks for incremental pulls: read remote times in the right zone, remember the latest cursor value seen,
and turn it into the value of the remote's since-filter.

A pull asks for records whose cursor value is at or after ``since_value(watermark, ...)``; for time cursors
that is the watermark minus an overlap window, so records sharing the boundary second, or arriving a little
late, are read again rather than skipped. Records read twice are recognised downstream by their bindings.

Time watermarks are stored as ISO 8601 UTC strings (``2024-05-01T04:30:00Z``); id watermarks as the id's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integration_hub.engine.errors import ConfigurationError, MappingError
from integration_hub.engine.jsonpath import compile_path

WatermarkKind = Literal["time", "id"]
KINDS = ("time", "id")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EPOCH_MS_FROM = 100_000_000_000
"""Epoch numbers at or above this are milliseconds: as seconds it is the year 5138, as milliseconds 1973."""
NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
ISO_8601 = re.compile(
	r"^(?P<date>\d{4}-\d{2}-\d{2})"
	r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
	r"\s*(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
INTEGER = re.compile(r"^[+-]?\d+$")


def zone_named(name: str) -> ZoneInfo:
	"""The IANA zone ``name``; ConfigurationError for anything else."""
	try:
		return ZoneInfo(name)
	except (ZoneInfoNotFoundError, ValueError, TypeError):
		raise ConfigurationError(
			f"Unknown time zone {name!r}; use an IANA name such as 'Asia/Kolkata' or 'UTC'"
		) from None


def parse_remote_time(value: Any, default_tz: str) -> datetime:
	"""An aware datetime from ISO 8601 text (``Z``, offsets, space separator, any fraction), epoch seconds or
	milliseconds (number or digits), or a date/datetime. Values without an offset are read in ``default_tz``,
	the zone of the device or connector that wrote them."""
	local = zone_named(default_tz)
	if isinstance(value, bool):
		raise MappingError(f"{value!r} is not a time")
	if isinstance(value, int | float | Decimal):
		return from_epoch(value)
	if isinstance(value, str):
		moment = from_text(value)
	elif isinstance(value, datetime):
		moment = value
	elif isinstance(value, date):
		moment = datetime.combine(value, time())
	else:
		raise MappingError(f"{value!r} is not a time")
	return moment if moment.tzinfo is not None else moment.replace(tzinfo=local)


def from_epoch(number: float | Decimal) -> datetime:
	seconds = number / 1000 if abs(number) >= EPOCH_MS_FROM else number
	try:
		return EPOCH + timedelta(seconds=float(seconds))
	except (OverflowError, ValueError):
		raise MappingError(
			f"{number!r} is not a time (out of range as epoch seconds or milliseconds)"
		) from None


def from_text(text: str) -> datetime:
	stripped = text.strip()
	if NUMBER.match(stripped):
		return from_epoch(Decimal(stripped))
	match = ISO_8601.match(stripped)
	if match is None:
		raise MappingError(f"Cannot read {text!r} as a time; expected ISO 8601 or epoch seconds")
	parts = match.groupdict()
	try:
		day = date.fromisoformat(parts["date"])
		clock = time(
			int(parts["hour"] or 0),
			int(parts["minute"] or 0),
			int(parts["second"] or 0),
			int((parts["fraction"] or "0")[:6].ljust(6, "0")),
		)
	except ValueError as exc:
		raise MappingError(f"Cannot read {text!r} as a time: {exc}") from None
	return datetime.combine(day, clock, tzinfo=fixed_offset(parts["zone"]))


def fixed_offset(text: str | None) -> timezone | None:
	"""``Z``, ``+05:30``, ``-0800`` or ``+05`` as a timezone; None when there is no offset."""
	if not text:
		return None
	if text in ("Z", "z"):
		return timezone.utc
	digits = text[1:].replace(":", "")
	offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
	return timezone(-offset if text[0] == "-" else offset)


def to_site_time(value: Any, default_tz: str, site_tz: str) -> datetime:
	"""A remote time as the naive wall-clock time of the site, for a Frappe Datetime field."""
	return parse_remote_time(value, default_tz).astimezone(zone_named(site_tz)).replace(tzinfo=None)


def utc_text(moment: datetime) -> str:
	return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def id_key(value: Any) -> tuple[int, int | str]:
	"""Integers (or integer text) sort as numbers, before any other id, which sorts as text."""
	if isinstance(value, int) and not isinstance(value, bool):
		return (0, value)
	text = str(value).strip()
	return (0, int(text)) if INTEGER.match(text) else (1, text)


def id_text(key: tuple[int, int | str]) -> str:
	return str(key[1])


def check_kind(kind: str) -> None:
	if kind not in KINDS:
		raise ConfigurationError(f"Unknown watermark kind {kind!r}; use one of: {', '.join(KINDS)}")


def advance(
	current: str | None,
	records: Iterable[dict],
	cursor_field: str,
	kind: str,
	default_tz: str,
) -> str | None:
	"""The new watermark: the latest of ``current`` and every record's value at ``cursor_field`` (JMESPath).

	Records without a value are passed over; the order of ``records`` does not matter (newest-first lists
	work), but save the result only once the records it covers are committed.
	"""
	check_kind(kind)
	path = compile_path(cursor_field, "cursor field")
	key, text = watermark_codec(kind, default_tz, cursor_field)
	best = key(current) if current not in (None, "") else None
	for record in records:
		value = path.search(record)
		if value is None or value == "":
			continue
		candidate = key(value)
		if best is None or candidate > best:
			best = candidate
	return None if best is None else text(best)


def watermark_codec(kind: str, default_tz: str, cursor_field: str) -> tuple[Callable[[Any], Any], Callable]:
	"""How values of ``kind`` compare (key) and are stored (text)."""
	if kind == "id":
		return id_key, id_text

	def time_key(value: Any) -> datetime:
		try:
			return parse_remote_time(value, default_tz)
		except MappingError as exc:
			raise MappingError(f"Cursor field {cursor_field}: {exc.message}", field=cursor_field) from None

	return time_key, utc_text


def since_value(
	watermark: str | None, kind: str, overlap_seconds: int, fmt: str = "iso", tz: str = "UTC"
) -> str | None:
	"""The value for the since-filter (use it with an inclusive, ``>=`` filter), None before the first run.

	Time: the watermark less ``overlap_seconds``, rounded down, as ``fmt``: "iso" (ISO 8601 in ``tz``),
	"epoch" (seconds), "epoch_ms", or a strftime pattern (wall-clock time in ``tz``, e.g. the device's zone).
	Id: the watermark itself.
	"""
	check_kind(kind)
	if overlap_seconds < 0:
		raise ConfigurationError(f"The overlap window must be 0 seconds or more, not {overlap_seconds}")
	if watermark in (None, ""):
		return None
	if kind == "id":
		return watermark
	moment = parse_remote_time(watermark, "UTC") - timedelta(seconds=overlap_seconds)
	return format_time(moment, fmt, tz)


def format_time(moment: datetime, fmt: str, tz: str) -> str:
	if fmt == "epoch":
		return str((moment - EPOCH) // timedelta(seconds=1))
	if fmt == "epoch_ms":
		return str((moment - EPOCH) // timedelta(milliseconds=1))
	local = moment.astimezone(zone_named(tz)).replace(microsecond=0)
	if fmt == "iso":
		return local.isoformat().replace("+00:00", "Z")
	if "%" in fmt:
		return local.strftime(fmt)
	raise ConfigurationError(
		f"Unknown since format {fmt!r}; use 'iso', 'epoch', 'epoch_ms' or a strftime pattern like '%Y-%m-%d %H:%M:%S'"
	)
