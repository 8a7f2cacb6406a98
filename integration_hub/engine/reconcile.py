"""Reconciliation: which records both sides hold for a period, and how the others differ.

The ERPNext side (documents of one mapping and period, each with the remote id it is bound to) is held as one
small record per document. The remote list is fed in record by record as its pages arrive and is not kept:
a remote record is remembered only while it stands for a difference. Memory therefore grows with the ERPNext
side of the period and the number of differences, never with the length of the remote list.

Matching, in order of trust: the binding (remote id → document), then the reference the remote keeps back to
ERPNext (its invoice number holding the document name), then — for a remote record nothing accounts for — a
suggested match among the unbound documents of the same day, amount and currency.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from integration_hub.engine.errors import ConfigurationError, MappingError
from integration_hub.engine.mapping import extract

MISSING_AT_REMOTE = "Missing at Remote"
UNKNOWN_AT_REMOTE = "Unknown at Remote"
AMOUNT_DIFFERS = "Amount Differs"
STATUS_DIFFERS = "Status Differs"
DUPLICATE_AT_REMOTE = "Duplicate at Remote"
NOT_IMPORTED = "Not Imported"
DEAD_IN_SYNC_LOG = "Dead in Sync Log"

NEVER_DELIVERED = "never delivered"
BOUND_TO_GONE_ID = "bound to an id the remote no longer lists"
DELETED_IN_ERPNEXT = "bound to a document deleted in ERPNext"
ALREADY_HELD_AS = "already held at the remote as"
"""Notes say why a record landed in its class; the Desk layer words and translates them."""

OUTBOUND = "Outbound"
INBOUND = "Inbound"


@dataclass(slots=True)
class LocalRecord:
	"""One ERPNext document in scope: ``live`` is False once cancelled; ``exists`` is False for a document
	whose binding outlived it (deleted in ERPNext)."""

	name: str
	day: str | None
	amount: float
	currency: str
	live: bool = True
	remote_id: str | None = None
	exists: bool = True


@dataclass(slots=True)
class RemoteRecord:
	remote_id: str
	day: str | None
	amount: float | None
	currency: str | None
	live: bool = True
	reference: str | None = None
	raw: dict | None = None


@dataclass
class Difference:
	kind: str
	name: str | None = None
	remote_id: str | None = None
	day: str | None = None
	local_amount: float | None = None
	remote_amount: float | None = None
	currency: str | None = None
	remote_currency: str | None = None
	local_live: bool | None = None
	remote_live: bool | None = None
	suggested: str | None = None
	basis: str | None = None
	note: str = ""
	note_value: str | None = None
	record: dict | None = None

	@property
	def fingerprint(self) -> str:
		"""Stable for the same difference with the same values, so an accepted one stays accepted only until
		either side changes again."""
		parts = (
			self.kind,
			self.name,
			self.remote_id,
			money_text(self.local_amount),
			money_text(self.remote_amount),
			self.currency,
			self.remote_currency,
			self.local_live,
			self.remote_live,
		)
		return hashlib.sha1("|".join(str(part) for part in parts).encode()).hexdigest()


@dataclass
class DayTotals:
	local_count: int = 0
	local_total: float = 0.0
	remote_count: int = 0
	remote_total: float = 0.0

	@property
	def difference(self) -> float:
		return round(self.local_total - self.remote_total, 6)


@dataclass
class Outcome:
	matched: int = 0
	local_count: int = 0
	remote_count: int = 0
	differences: list[Difference] = field(default_factory=list)
	days: dict[str, DayTotals] = field(default_factory=dict)


def money_text(value: float | None) -> str:
	return "" if value is None else f"{value:.6f}"


class Reconciler:
	"""Feed it the ERPNext side at construction and the remote side with :meth:`add`; :meth:`finish` classes
	what is left.

	``direction`` decides what a lone record means: outbound, an unbound document is one the remote is
	missing; inbound, the ERPNext side is only what was imported, and a remote record with no document is one
	that was not imported (or is still Dead in the Sync Log when its id is in ``dead_ids``).
	"""

	def __init__(
		self,
		local: Iterable[LocalRecord],
		*,
		direction: str = OUTBOUND,
		tolerance: float = 0.01,
		dead_ids: Iterable[str] = (),
	) -> None:
		self.direction = direction
		self.tolerance = abs(tolerance)
		self.dead_ids = set(dead_ids)
		self.local: dict[str, LocalRecord] = {}
		self.by_remote_id: dict[str, str] = {}
		self.seen: dict[str, str] = {}
		self.by_reference: list[RemoteRecord] = []
		self.unknown: list[tuple[RemoteRecord, str, str | None]] = []
		self.outcome = Outcome()
		for record in local:
			self.local[record.name] = record
			if record.remote_id:
				self.by_remote_id[record.remote_id] = record.name
			if record.exists:
				self.outcome.local_count += 1
				if record.live:
					self.count_local(record)

	def count_local(self, record: LocalRecord) -> None:
		day = self.day(record.day)
		day.local_count += 1
		day.local_total = round(day.local_total + record.amount, 6)

	def day(self, value: str | None) -> DayTotals:
		return self.outcome.days.setdefault(value or "", DayTotals())

	def add(self, remote: RemoteRecord) -> None:
		self.outcome.remote_count += 1
		if remote.live and remote.amount is not None:
			day = self.day(remote.day)
			day.remote_count += 1
			day.remote_total = round(day.remote_total + remote.amount, 6)
		name = self.by_remote_id.get(remote.remote_id)
		if name is not None and self.local[name].exists:
			self.compare(self.local[name], remote)
		elif name is not None:
			self.lone_remote(remote, DELETED_IN_ERPNEXT, name)
		elif remote.reference and remote.reference in self.local:
			self.by_reference.append(remote)
		else:
			self.lone_remote(remote, "", None)

	def lone_remote(self, remote: RemoteRecord, note: str, note_value: str | None) -> None:
		if self.direction == INBOUND:
			kind = DEAD_IN_SYNC_LOG if remote.remote_id in self.dead_ids else NOT_IMPORTED
			self.differ(kind, None, remote, note=note, note_value=note_value)
		else:
			self.unknown.append((remote, note, note_value))

	def compare(self, local: LocalRecord, remote: RemoteRecord) -> None:
		self.seen[local.name] = remote.remote_id
		if local.live != remote.live:
			self.differ(STATUS_DIFFERS, local, remote)
		elif remote.amount is not None and (
			(remote.currency and local.currency and remote.currency != local.currency)
			or abs(local.amount - remote.amount) > self.tolerance + 1e-9
		):
			self.differ(AMOUNT_DIFFERS, local, remote)
		else:
			self.outcome.matched += 1

	def differ(
		self, kind: str, local: LocalRecord | None, remote: RemoteRecord | None, **extra
	) -> Difference:
		difference = Difference(kind=kind, **extra)
		if local is not None:
			difference.name = local.name
			difference.day = local.day
			difference.local_amount = local.amount
			difference.currency = local.currency
			difference.local_live = local.live
		if remote is not None:
			difference.remote_id = remote.remote_id
			difference.day = difference.day or remote.day
			difference.remote_amount = remote.amount
			difference.remote_currency = remote.currency
			difference.remote_live = remote.live
			difference.record = remote.raw
		self.outcome.differences.append(difference)
		return difference

	def finish(self) -> Outcome:
		claimed: set[str] = set()
		for remote in self.by_reference:
			name = remote.reference
			if not remote.live and (name in self.seen or name in claimed):
				continue
			if name in self.seen or name in claimed:
				self.differ(
					DUPLICATE_AT_REMOTE,
					self.local[name],
					remote,
					note=ALREADY_HELD_AS,
					note_value=self.seen.get(name),
				)
			else:
				claimed.add(name)
				self.suggest(remote, name, "reference")
		unmatched = self.unmatched_by_day(claimed)
		for remote, note, note_value in self.unknown:
			match = self.suggested_match(remote, unmatched, claimed)
			if match:
				claimed.add(match)
				self.suggest(remote, match, "amount and date")
			else:
				self.differ(UNKNOWN_AT_REMOTE, None, remote, note=note, note_value=note_value)
		for name, local in self.local.items():
			if name in self.seen or name in claimed or not local.exists:
				continue
			if self.direction == INBOUND or local.live:
				note = BOUND_TO_GONE_ID if local.remote_id else NEVER_DELIVERED
				self.differ(MISSING_AT_REMOTE, local, None, note=note, note_value=local.remote_id)
		self.outcome.differences.sort(key=lambda d: (d.day or "", d.kind, d.name or "", d.remote_id or ""))
		return self.outcome

	def suggest(self, remote: RemoteRecord, name: str, basis: str) -> None:
		"""A remote record that stands for an unbound (or wrongly bound) document: one difference, fixed by
		adopting it, instead of a missing document and an unknown record."""
		local = self.local[name]
		self.differ(
			UNKNOWN_AT_REMOTE,
			None,
			remote,
			suggested=name,
			basis=basis,
			local_amount=local.amount,
			currency=local.currency,
			local_live=local.live,
		)

	def suggested_match(
		self, remote: RemoteRecord, unmatched: dict[str, list[str]], claimed: set[str]
	) -> str | None:
		"""The one unbound document of the remote record's day with its amount and currency; none when two
		could be it, since a guess between equals would be a coin toss."""
		if remote.amount is None:
			return None
		candidates = [
			name
			for name in unmatched.get(remote.day or "", ())
			if name not in claimed
			and abs(self.local[name].amount - remote.amount) <= self.tolerance + 1e-9
			and (not remote.currency or remote.currency == self.local[name].currency)
		]
		return candidates[0] if len(candidates) == 1 else None

	def unmatched_by_day(self, claimed: set[str]) -> dict[str, list[str]]:
		index: dict[str, list[str]] = defaultdict(list)
		for name, local in self.local.items():
			if name not in self.seen and name not in claimed and local.exists and local.live:
				index[local.day or ""].append(name)
		return index


@dataclass(frozen=True)
class ListSpec:
	"""Where a remote list record keeps what reconciliation compares (JMESPath expressions)."""

	id_path: str = "id"
	reference_path: str = ""
	amount_path: str = ""
	currency_path: str = ""
	status_path: str = ""
	date_path: str = ""
	cancelled_statuses: frozenset[str] = frozenset({"cancelled", "canceled", "void", "voided", "deleted"})


def read_remote(record: Any, spec: ListSpec, number: int, keep_raw: bool = True) -> RemoteRecord:
	"""One remote list record as a :class:`RemoteRecord`; ``number`` counts records from 1 for the errors."""
	if not isinstance(record, dict):
		raise ConfigurationError(
			f"Record {number} of the remote list is a {type(record).__name__}, not an object"
		)
	remote_id = extract(record, spec.id_path or "id")
	if remote_id in (None, ""):
		raise ConfigurationError(
			f"The remote id path {spec.id_path or 'id'!r} finds nothing in record {number} of the remote list "
			f"(its fields: {', '.join(sorted(record)[:12]) or 'none'})"
		)
	status = extract(record, spec.status_path) if spec.status_path else None
	reference = extract(record, spec.reference_path) if spec.reference_path else None
	currency = extract(record, spec.currency_path) if spec.currency_path else None
	return RemoteRecord(
		remote_id=str(remote_id),
		day=day_of(extract(record, spec.date_path), spec.date_path, number) if spec.date_path else None,
		amount=amount_of(extract(record, spec.amount_path), spec.amount_path, number)
		if spec.amount_path
		else None,
		currency=str(currency) if currency not in (None, "") else None,
		live=str(status).strip().lower() not in spec.cancelled_statuses if status is not None else True,
		reference=str(reference) if reference not in (None, "") else None,
		raw=record if keep_raw else None,
	)


def amount_of(value: Any, path: str, number: int) -> float | None:
	if value in (None, ""):
		return None
	try:
		return float(Decimal(str(value)))
	except (InvalidOperation, ValueError):
		raise MappingError(
			f"Record {number}: the amount at {path!r} is not a number: {value!r}", path
		) from None


def day_of(value: Any, path: str, number: int) -> str | None:
	"""The calendar day of a date or timestamp as the remote wrote it (its own day, not shifted)."""
	if value in (None, ""):
		return None
	if isinstance(value, datetime | date):
		return value.isoformat()[:10]
	text = str(value).strip()
	try:
		return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
	except ValueError:
		raise MappingError(f"Record {number}: the date at {path!r} is not a date: {value!r}", path) from None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
	"""Leaf values by path (``lines[0].sku``), for a field-by-field view of two records."""
	if isinstance(data, dict):
		flat: dict[str, Any] = {}
		for key, value in data.items():
			flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
		return flat
	if isinstance(data, list):
		flat = {}
		for position, value in enumerate(data):
			flat.update(flatten(value, f"{prefix}[{position}]"))
		return flat
	return {prefix: data}


def side_by_side(erpnext: Any, remote: Any, tolerance: float = 0.0) -> list[dict[str, Any]]:
	"""One row per field either side holds: both values and whether they differ (numbers within the
	tolerance, and text that only differs in case or outer spaces, count as equal). A field only the remote
	holds (its own id, its status) is shown but not marked: ERPNext has nothing to say about it."""
	left, right = flatten(erpnext), flatten(remote)
	rows = []
	for path in list(left) + [path for path in right if path not in left]:
		mine, theirs = left.get(path), right.get(path)
		rows.append(
			{
				"field": path,
				"erpnext": mine,
				"remote": theirs,
				"differs": path in left and not same(mine, theirs, tolerance),
			}
		)
	return rows


def same(mine: Any, theirs: Any, tolerance: float) -> bool:
	try:
		if isinstance(mine, int | float | Decimal | str) and isinstance(theirs, int | float | Decimal | str):
			return abs(Decimal(str(mine)) - Decimal(str(theirs))) <= Decimal(str(tolerance))
	except InvalidOperation:
		pass
	if isinstance(mine, str) and isinstance(theirs, str):
		return mine.strip().casefold() == theirs.strip().casefold()
	return mine == theirs


def project(data: Any, shape: Any) -> Any:
	"""``data`` cut down to the keys ``shape`` has, at every level (child rows by position)."""
	if isinstance(shape, dict):
		source = data if isinstance(data, dict) else {}
		return {key: project(source.get(key), value) for key, value in shape.items()}
	if isinstance(shape, list):
		source = data if isinstance(data, list) else []
		return [project(source[i] if i < len(source) else None, value) for i, value in enumerate(shape)]
	return data
