"""The one road every inbound record takes, whether pulled, pushed by a webhook or posted to the ingest API.

``stage_records`` turns remote records into inbound Sync Log rows (payload kept, secrets redacted) in the
caller's transaction; a record whose binding already holds the same payload is counted, not staged, and so
is a version of a record already waiting or Dead (Retry re-applies those). ``apply_rows`` then applies each row in a transaction of its
own: lock the row, map the record, resolve links, create / update / skip the document through its
Integration Binding, optionally submit, save the binding and record the outcome — all committed together or
not at all. A bad record ends Dead with a message naming the field and value; a lock wait or deadlock gets a
next attempt with backoff, which the minute sweep picks up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

import frappe
from frappe import _
from frappe.utils import get_system_timezone, now_datetime, strip_html_tags

from integration_hub.bindings import binding_filters, find_document, get_binding, save_binding
from integration_hub.connectors import get_connector, secret_values
from integration_hub.engine.errors import IntegrationError, MappingError
from integration_hub.engine.links import LinkRule, resolve_links
from integration_hub.engine.mapping import extract, payload_hash
from integration_hub.engine.policy import RetryPolicy, next_retry_delay
from integration_hub.engine.redact import redact_text
from integration_hub.engine.transforms import to_jsonable
from integration_hub.engine.watermark import to_site_time
from integration_hub.inbound.builders import Builder, builder_for
from integration_hub.inbound.errors import RecordRejected, RecordSkipped
from integration_hub.jobs import enqueue_once
from integration_hub.logs import new_log_name
from integration_hub.mappings import compile_mapping_doc

APPLY_JOB = "integration_hub.inbound.apply.apply_due_rows"
APPLY_JOB_TIMEOUT = 1500
APPLY_TIME_BUDGET = 1200
CLAIM_LIMIT = 200
STAGED_STATUSES = ("Queued", "Failed", "Running", "Dead")
"""A record version already in one of these rows is not staged again: it is waiting, or it waits for a person."""
MATCH_BY = {"Name": "name", "Field": "field", "Binding": "binding"}
RETRYABLE_DB_ERRORS = (frappe.QueryDeadlockError, frappe.QueryTimeoutError)
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_delay=5, max_delay=300)


@dataclass
class StageResult:
	rows: list[str] = field(default_factory=list)
	unchanged: int = 0
	waiting: int = 0
	invalid: int = 0
	entries: list[dict] = field(default_factory=list)
	"""Per record, in order: its external id, and its row (staged) or why there is none (and the document)."""


@dataclass
class ApplyCounts:
	created: int = 0
	updated: int = 0
	unchanged: int = 0
	failed: int = 0

	def add(self, action: str) -> None:
		key = {"Created": "created", "Updated": "updated", "Amended": "updated", "Cancelled": "updated"}.get(
			action
		)
		if key is None:
			key = "failed" if action in ("Dead", "Failed") else "unchanged"
		setattr(self, key, getattr(self, key) + 1)


@dataclass
class InboundPlan:
	"""What applying a record needs from its Mapping, built once per version of the Mapping."""

	mapping: object
	links: list[LinkRule]
	match_fields: list[str]
	context: dict
	retry_policy: RetryPolicy
	builder: Builder | None = None


# --- staging -------------------------------------------------------------------------------------------------


def stage_records(
	mapping, records: list, event: str, event_ids: list[str | None] | None = None, batch_id: str | None = None
) -> StageResult:
	"""Write Queued inbound rows for ``records`` in the current transaction; the caller commits."""
	result = StageResult()
	secrets = secret_values(mapping.connector)
	now = now_datetime()
	prepared = []
	for position, record in enumerate(records):
		stored = stored_payload(record, secrets)
		external_id = external_id_of(mapping, stored)
		digest = payload_hash(stored)
		key = row_key(mapping.name, external_id, digest)
		event_id = event_ids[position] if event_ids else None
		prepared.append((stored, external_id, digest, key, event_id))
	known = bound_hashes(mapping, [item[1] for item in prepared if item[1]])
	waiting = staged_keys([item[3] for item in prepared])
	rows = []
	for stored, external_id, digest, key, event_id in prepared:
		bound = known.get(external_id) if external_id else None
		if bound and bound.last_payload_hash == digest:
			result.unchanged += 1
			result.entries.append(
				{"external_id": external_id, "outcome": "unchanged", "document": bound.reference_name}
			)
			continue
		if key in waiting:
			result.waiting += 1
			result.entries.append({"external_id": external_id, "outcome": "waiting", "key": key})
			continue
		waiting.add(key)
		status, error = "Queued", None
		if not external_id:
			status, error = "Dead", no_external_id_message(mapping)
			result.invalid += 1
		name = new_log_name()
		result.entries.append({"external_id": external_id, "outcome": "staged", "row": name})
		rows.append(
			{
				"name": name,
				"status": status,
				"direction": "Inbound",
				"connector": mapping.connector,
				"mapping": mapping.name,
				"event": event,
				"reference_doctype": mapping.target_doctype,
				"external_id": external_id,
				"idempotency_key": key,
				"event_id": event_id,
				"batch_id": batch_id,
				"attempts": 0,
				"next_attempt_at": now if status == "Queued" else None,
				"remote_updated_at": remote_updated_at(mapping, stored),
				"payload": json.dumps(stored, indent=1, default=str),
				"error": error,
			}
		)
		if status == "Queued":
			result.rows.append(name)
	insert_rows(rows, now)
	return result


def stored_payload(record, secrets: list[str]):
	"""The record as it is kept on the row: JSON-ready, any connector secret it echoes redacted."""
	record = to_jsonable(record)
	if not secrets:
		return record
	return json.loads(redact_text(json.dumps(record), secrets))


def external_id_of(mapping, record) -> str | None:
	if not mapping.external_id_path:
		return None
	try:
		value = extract(record, mapping.external_id_path)
	except MappingError:
		return None
	return str(value).strip() if value not in (None, "") else None


def no_external_id_message(mapping) -> str:
	return _("The record has no external id at {0}, so it cannot be bound to a document").format(
		mapping.external_id_path or _("(no External ID Path set on mapping {0})").format(mapping.name)
	)


def remote_updated_at(mapping, record):
	"""The record's cursor time in the site's time zone, when the mapping's cursor follows a time."""
	if not mapping.get("cursor_field") or (mapping.get("cursor_kind") or "Time") != "Time":
		return None
	try:
		value = extract(record, mapping.cursor_field)
		if value in (None, ""):
			return None
		return to_site_time(value, remote_timezone(mapping.connector), get_system_timezone())
	except IntegrationError:
		return None


def row_key(mapping: str, external_id: str | None, digest: str) -> str:
	"""One key per version of one record for one mapping: equal keys are the same work."""
	return "ih-in-" + payload_hash([mapping, external_id or "", digest])[:40]


def bound_hashes(mapping, external_ids: list[str]) -> dict:
	"""{external id: binding (reference_name, last_payload_hash)} of the records already bound."""
	if not external_ids:
		return {}
	rows = frappe.get_all(
		"Integration Binding",
		filters=binding_filters(mapping.connector, mapping.target_doctype, mapping.remote_object_type)
		| {"external_id": ("in", external_ids)},
		fields=["external_id", "reference_name", "last_payload_hash"],
	)
	return {row.external_id: row for row in rows}


def staged_keys(keys: list[str]) -> set[str]:
	if not keys:
		return set()
	return set(
		frappe.get_all(
			"Sync Log",
			filters={"idempotency_key": ("in", keys), "status": ("in", STAGED_STATUSES)},
			pluck="idempotency_key",
		)
	)


def insert_rows(rows: list[dict], now) -> None:
	if not rows:
		return
	user = frappe.session.user
	columns = [*rows[0].keys(), "creation", "modified", "owner", "modified_by"]
	frappe.db.bulk_insert(
		"Sync Log", columns, [(*row.values(), now, now, user, user) for row in rows], ignore_duplicates=False
	)


# --- applying ------------------------------------------------------------------------------------------------


def apply_rows(names: list[str], counts: ApplyCounts | None = None) -> ApplyCounts:
	"""Apply each row in its own transaction; a row another worker holds is left to it."""
	counts = counts or ApplyCounts()
	for name in names:
		outcome = apply_row(name)
		if outcome:
			counts.add(outcome)
	return counts


def apply_row(name: str) -> str | None:
	"""Apply one row; returns the action (Created, Updated, Amended, Unchanged, Duplicate) or Failed / Dead."""
	row = lock_row(name)
	if row is None:
		frappe.db.commit()
		return None
	started = time.monotonic()
	attempts = (row.attempts or 0) + 1
	try:
		plan = inbound_plan(row.mapping)
		action, document = write_record(plan, row)
	except RecordSkipped as skipped:
		frappe.db.rollback()
		reason, document = skipped.args
		return record_outcome(row, "Skipped", attempts, started, "Duplicate", document, error=reason)
	except RETRYABLE_DB_ERRORS as error:
		frappe.db.rollback()
		return record_retry(row, attempts, started, error_message(error))
	except (RecordRejected, IntegrationError, frappe.ValidationError) as error:
		frappe.db.rollback()
		return record_outcome(row, "Dead", attempts, started, error=error_message(error))
	except Exception as error:
		frappe.db.rollback()
		logged = frappe.log_error(
			title=_("Integration Hub could not apply an inbound record"),
			message=redact_text(frappe.get_traceback(), secret_values(row.connector)),
			reference_doctype="Sync Log",
			reference_name=row.name,
		)
		message = _("Unexpected error while applying the record ({0}); see Error Log {1}").format(
			error.__class__.__name__, logged.name
		)
		return record_outcome(row, "Dead", attempts, started, error=message)
	status = "Skipped" if action == "Unchanged" else "Success"
	return record_outcome(row, status, attempts, started, action, document)


def lock_row(name: str):
	"""The row, locked for this transaction, when it is still waiting and nobody else holds it."""
	rows = frappe.db.sql(
		"""
		select * from `tabSync Log`
		where name = %(name)s and direction = 'Inbound' and status in ('Queued', 'Failed')
		for update skip locked
		""",
		{"name": name},
		as_dict=True,
	)
	return rows[0] if rows else None


def write_record(plan: InboundPlan, row) -> tuple[str, str]:
	"""Create, update or leave the document for one row's record; returns (action, document name)."""
	return write_values(plan, json.loads(row.payload), row.external_id, row.event)


def write_values(plan: InboundPlan, record, external_id: str, event: str | None) -> tuple[str, str]:
	mapping = plan.mapping
	digest = payload_hash(record)
	compiled, _condition = compile_mapping_doc(mapping)
	values = compiled.apply(record, {**plan.context, "external_id": external_id, "event": event})
	resolve_links(values, plan.links, link_lookup(mapping.connector), nested_creator(record, event))
	frappe.local.message_log = []
	name = find_document(mapping.connector, mapping.target_doctype, external_id, mapping.remote_object_type)
	binding = None
	if name:
		binding = get_binding(mapping.connector, mapping.target_doctype, name, mapping.remote_object_type)
		if binding and binding.last_payload_hash == digest:
			save_binding_for(mapping, name, external_id, digest, binding)
			return "Unchanged", name
	if mapping.cancel_when and extract(record, mapping.cancel_when):
		return cancel_bound_document(mapping, name, external_id)
	if plan.builder is not None:
		if name:
			raise RecordRejected(
				_("Remote record {0} is already {1} {2}; a change to it is not applied").format(
					external_id, _(mapping.target_doctype), name
				)
			)
		name = create_built_document(plan, values)
		save_binding_for(mapping, name, external_id, digest, binding)
		return "Created", name
	if not name:
		name = find_by_match_fields(plan, values, external_id)
	if name:
		action, amended = update_document(plan, name, values)
		if binding and amended != name:
			frappe.db.set_value("Integration Binding", binding.name, "reference_name", amended)
		name = amended
	else:
		action, name = "Created", create_document(plan, values)
	save_binding_for(mapping, name, external_id, digest, binding)
	return action, name


def nested_creator(record, event: str | None):
	"""For link rules with Create With: the record's own sub-record (its customer, say) goes through that
	mapping in the same transaction, so the order and its new customer are written together or not at all."""

	def create(rule: LinkRule, value: str) -> str | None:
		if not rule.create_with:
			return None
		found = extract(record, rule.create_from) if rule.create_from else None
		candidates = found if isinstance(found, list) else [found]
		plan = inbound_plan(rule.create_with)
		for candidate in candidates:
			if isinstance(candidate, dict) and external_id_of(plan.mapping, candidate) == value:
				return write_values(plan, candidate, value, event)[1]
		return None

	return create


def cancel_bound_document(mapping, name: str | None, external_id: str) -> tuple[str, str]:
	"""The remote cancelled the record: cancel its submitted document (once; a cancelled one stays as it is)."""
	if not name:
		raise RecordRejected(
			_(
				"Remote record {0} was cancelled, but it was never received, so there is nothing to cancel"
			).format(external_id)
		)
	document = frappe.get_doc(mapping.target_doctype, name)
	if document.docstatus == 2:
		return "Unchanged", name
	if document.docstatus == 0:
		raise RecordRejected(
			_("{0} {1} is a draft; a draft is not cancelled").format(_(mapping.target_doctype), name)
		)
	mark_inbound(document, mapping)
	document.cancel()
	return "Cancelled", name


def create_built_document(plan: InboundPlan, values: dict) -> str:
	"""A document made by the mapping's builder from its inputs (a Payment Entry from an invoice, ...)."""
	missing = [name for name in plan.builder.required if values.get(name) in (None, "")]
	if missing:
		raise RecordRejected(_("The record gives no {0}").format(", ".join(missing)))
	document = plan.builder.build(values, plan.mapping)
	mark_inbound(document, plan.mapping)
	document.insert()
	if plan.mapping.submit_on_create:
		document.submit()
	return document.name


def create_document(plan: InboundPlan, values: dict) -> str:
	mapping = plan.mapping
	document = frappe.get_doc({**values, "doctype": mapping.target_doctype})
	mark_inbound(document, mapping)
	document.insert()
	if mapping.submit_on_create:
		document.submit()
	return document.name


def update_document(plan: InboundPlan, name: str, values: dict) -> tuple[str, str]:
	"""Draft documents take the new values; submitted ones follow the mapping's rule for changes."""
	mapping = plan.mapping
	document = frappe.get_doc(mapping.target_doctype, name)
	mark_inbound(document, mapping)
	if document.docstatus == 0:
		document.update(values)
		document.save()
		return "Updated", name
	if document.docstatus == 2:
		raise RecordRejected(
			_("{0} {1} was cancelled in ERPNext, so the remote's change was not applied").format(
				_(mapping.target_doctype), name
			)
		)
	if mapping.on_submitted_change != "Cancel and Amend":
		raise RecordRejected(
			_(
				"{0} {1} is submitted and the remote record changed; set 'When a Submitted Document Changes' "
				"to Cancel and Amend on mapping {2} to replace it, or amend it by hand"
			).format(_(mapping.target_doctype), name, mapping.name)
		)
	document.cancel()
	amended = frappe.copy_doc(document)
	amended.update(values)
	amended.docstatus = 0
	amended.amended_from = name
	mark_inbound(amended, mapping)
	amended.insert()
	if mapping.submit_on_create:
		amended.submit()
	return "Amended", amended.name


def mark_inbound(document, mapping) -> None:
	"""Inbound writes run with the mapping's rights, checked when it was saved, not the worker's user's.

	The source connector is remembered so that outbound mappings to the same connector do not echo the
	record back to where it came from.
	"""
	document.flags.ignore_permissions = True
	document.flags.integration_hub_source = mapping.connector


def find_by_match_fields(plan: InboundPlan, values: dict, external_id: str | None) -> str | None:
	"""An existing document with the same match-field values; one already bound elsewhere is a duplicate."""
	if not plan.match_fields or any(values.get(fieldname) in (None, "") for fieldname in plan.match_fields):
		return None
	mapping = plan.mapping
	filters = {fieldname: values[fieldname] for fieldname in plan.match_fields}
	name = frappe.db.get_value(mapping.target_doctype, filters, "name")
	if not name:
		return None
	bound_to = frappe.db.get_value(
		"Integration Binding",
		binding_filters(mapping.connector, mapping.target_doctype, mapping.remote_object_type)
		| {"reference_name": name},
		"external_id",
	)
	if bound_to and bound_to != external_id:
		raise RecordSkipped(
			_("Same {0} as remote record {1}, already stored as {2} {3}").format(
				", ".join(plan.match_fields), bound_to, _(mapping.target_doctype), name
			),
			name,
		)
	return name


def save_binding_for(mapping, name: str, external_id: str, digest: str, binding) -> None:
	save_binding(
		mapping.connector,
		mapping.target_doctype,
		name,
		external_id,
		remote_object_type=mapping.remote_object_type,
		mapping=mapping.name,
		payload_hash=digest,
		existing=binding,
	)


def link_lookup(connector: str):
	"""The lookup ``resolve_links`` calls: one query per rule and record."""

	def lookup(rule: LinkRule, values: list[str]) -> dict[str, str]:
		if rule.match_by == "binding":
			rows = frappe.get_all(
				"Integration Binding",
				filters={
					"connector": connector,
					"reference_doctype": rule.doctype,
					"external_id": ("in", values),
				},
				fields=["external_id as value", "reference_name as name"],
			)
		else:
			column = rule.match_field if rule.match_by == "field" else "name"
			rows = frappe.get_all(
				rule.doctype, filters={column: ("in", values)}, fields=[f"{column} as value", "name"]
			)
		by_folded = {str(row.value).casefold(): row.name for row in rows}
		return {value: by_folded[value.casefold()] for value in values if value.casefold() in by_folded}

	return lookup


# --- outcomes ------------------------------------------------------------------------------------------------


def record_outcome(
	row,
	status: str,
	attempts: int,
	started: float,
	action: str | None = None,
	document: str | None = None,
	error: str | None = None,
) -> str:
	values = {
		"status": status,
		"attempts": attempts,
		"error": (error or None) and error[:10000],
		"lease_expires_at": None,
		"next_attempt_at": None,
		"duration_ms": int((time.monotonic() - started) * 1000),
		"modified": now_datetime(),
	}
	if action:
		values["inbound_action"] = action
	if document:
		values["reference_name"] = document
	set_row_values(row.name, values)
	frappe.db.commit()
	return action if status == "Success" else (action or status)


def record_retry(row, attempts: int, started: float, message: str) -> str:
	policy = inbound_retry_policy(row.connector)
	if attempts >= policy.max_attempts:
		return record_outcome(
			row,
			"Dead",
			attempts,
			started,
			error=_("Gave up after {0} attempts: {1}").format(attempts, message),
		)
	set_row_values(
		row.name,
		{
			"status": "Failed",
			"attempts": attempts,
			"error": message,
			"next_attempt_at": now_datetime() + timedelta(seconds=next_retry_delay(attempts, policy)),
			"modified": now_datetime(),
		},
	)
	frappe.db.commit()
	return "Failed"


def set_row_values(name: str, values: dict) -> None:
	log = frappe.qb.DocType("Sync Log")
	query = frappe.qb.update(log).where(log.name == name)
	for fieldname, value in values.items():
		query = query.set(log[fieldname], value)
	query.run()


def error_message(error: Exception) -> str:
	"""The reason as a person reads it: ERPNext's own message kept, markup removed."""
	text = getattr(error, "message", None) if isinstance(error, IntegrationError) else None
	text = text or str(error) or error.__class__.__name__
	return strip_html_tags(text).strip()


def inbound_retry_policy(connector: str) -> RetryPolicy:
	try:
		return get_connector(connector).retry_policy
	except (IntegrationError, frappe.DoesNotExistError):
		return DEFAULT_RETRY


# --- plans ---------------------------------------------------------------------------------------------------

_plans: dict[tuple[str, str], InboundPlan] = {}


def inbound_plan(mapping_name: str) -> InboundPlan:
	mapping = frappe.get_cached_doc("Mapping", mapping_name)
	key = (mapping.name, str(mapping.modified))
	plan = _plans.get(key)
	if plan is None:
		for stale in [k for k in _plans if k[0] == mapping.name]:
			del _plans[stale]
		plan = _plans[key] = build_plan(mapping)
	return plan


def build_plan(mapping) -> InboundPlan:
	if mapping.direction != "Inbound":
		raise RecordRejected(_("Mapping {0} is not an inbound mapping").format(mapping.name))
	return InboundPlan(
		mapping=mapping,
		links=link_rules(mapping),
		match_fields=[part.strip() for part in (mapping.match_field or "").split(",") if part.strip()],
		context={
			"connector": mapping.connector,
			"mapping": mapping.name,
			"timezone": get_system_timezone(),
			"remote_timezone": remote_timezone(mapping.connector),
		},
		retry_policy=inbound_retry_policy(mapping.connector),
		builder=builder_for(mapping),
	)


def link_rules(mapping) -> list[LinkRule]:
	return [
		LinkRule(
			target=row.target.strip(),
			doctype=row.link_doctype,
			match_by=MATCH_BY.get(row.match_by or "Name", "name"),
			match_field=(row.match_field or "").strip(),
			default=row.default_value or None,
			create_with=row.get("create_with") or "",
			create_from=(row.get("create_from") or "").strip(),
		)
		for row in mapping.get("links") or []
	]


def remote_timezone(connector: str) -> str:
	return frappe.get_cached_value("Connector", connector, "time_zone") or get_system_timezone()


# --- the worker ----------------------------------------------------------------------------------------------


def apply_due_rows(mapping: str | None = None, time_budget: float = APPLY_TIME_BUDGET) -> ApplyCounts:
	"""Apply waiting rows (of one mapping, or all) until none are due or the time budget is spent."""
	deadline = time.monotonic() + time_budget
	counts = ApplyCounts()
	tried: set[str] = set()
	while time.monotonic() < deadline:
		names = [name for name in due_rows(mapping) if name not in tried]
		if not names:
			break
		tried.update(names)
		apply_rows(names, counts)
	return counts


def due_rows(mapping: str | None) -> list[str]:
	filters = {
		"direction": "Inbound",
		"status": ("in", ("Queued", "Failed")),
		"next_attempt_at": ("<=", now_datetime()),
	}
	if mapping:
		filters["mapping"] = mapping
	return frappe.get_all(
		"Sync Log", filters=filters, pluck="name", order_by="creation asc, name asc", limit=CLAIM_LIMIT
	)


def enqueue_apply(mapping: str) -> bool:
	return enqueue_once(APPLY_JOB, f"integration_hub:apply:{mapping}", APPLY_JOB_TIMEOUT, mapping=mapping)


def sweep() -> None:
	"""Every minute: a job for each mapping with inbound rows due (retries, webhook events, a killed run's rows)."""
	mappings = frappe.db.sql_list(
		"""
		select distinct mapping from `tabSync Log`
		where direction = 'Inbound' and status in ('Queued', 'Failed') and next_attempt_at <= %(now)s
		""",
		{"now": now_datetime()},
	)
	for mapping in mappings:
		enqueue_apply(mapping)
