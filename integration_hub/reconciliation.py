"""Reconciliation runs: ERPNext's documents of a period against the remote's list of the same period.

A run reads the ERPNext side in one indexed query (documents of the mapping's DocType by date, with the remote
id each is bound to), pages through the remote list (read only, through the connector's client and so its
rate limit and timeouts) feeding each record to the engine's classifier, and writes what differs as
Reconciliation Difference rows plus the per-day counts and sums. Fixes go through the roads that already
exist: re-send through the outbox (the document's original row, so its idempotency key), re-pull through the
inbound road, adopt by writing a binding.
"""

from __future__ import annotations

import json
from datetime import date

import frappe
from frappe import _
from frappe.utils import add_days, getdate, now_datetime, today

from integration_hub.bindings import binding_filters, get_binding, save_binding
from integration_hub.connectors import get_connector
from integration_hub.engine.errors import IntegrationError
from integration_hub.engine.pagination import iter_pages, iter_soap_pages
from integration_hub.engine.reconcile import (
	ALREADY_HELD_AS,
	BOUND_TO_GONE_ID,
	DELETED_IN_ERPNEXT,
	INBOUND,
	NEVER_DELIVERED,
	NOT_IMPORTED,
	Difference,
	ListSpec,
	LocalRecord,
	Outcome,
	Reconciler,
	read_remote,
)
from integration_hub.inbound.pull import pagination_spec, request_arguments
from integration_hub.jobs import enqueue_once

RUN_JOB = "integration_hub.reconciliation.run"
RUN_JOB_TIMEOUT = 6 * 3600
PROGRESS_EVENT = "integration_hub_reconcile_progress"
LOCAL_CHUNK = 2000
CANCEL_EVENTS = ("on_cancel",)
CREATE_EVENTS = ("on_submit", "after_insert")


# --- starting ------------------------------------------------------------------------------------------------


def start(mapping: str, from_date, to_date, scheduled: bool = False) -> str:
	"""Create a Reconciliation; its worker starts once the transaction commits."""
	doc = frappe.get_doc(
		{
			"doctype": "Reconciliation",
			"mapping": mapping,
			"from_date": getdate(from_date),
			"to_date": getdate(to_date),
			"scheduled": int(scheduled),
		}
	)
	doc.insert(ignore_permissions=scheduled)
	return doc.name


def enqueue_run(reconciliation: str) -> bool:
	return enqueue_once(
		RUN_JOB, f"integration_hub:reconcile:{reconciliation}", RUN_JOB_TIMEOUT, reconciliation=reconciliation
	)


def reconcile_yesterday() -> None:
	"""Every night: one run for yesterday per enabled mapping that asks for it."""
	yesterday = add_days(today(), -1)
	for mapping in frappe.get_all(
		"Mapping", filters={"enabled": 1, "reconcile_nightly": 1}, pluck="name", order_by="name"
	):
		try:
			start(mapping, yesterday, yesterday, scheduled=True)
		except frappe.ValidationError:
			frappe.db.rollback()
			frappe.log_error(title=_("Nightly reconciliation of {0} could not start").format(mapping))
			continue
		frappe.db.commit()


def list_configuration_errors(mapping) -> list[str]:
	"""What stops a mapping from being reconciled, worded for the person setting it up."""
	errors = []
	if mapping.direction == "Inbound" and not (mapping.list_path or mapping.endpoint_path):
		errors.append(
			_("Set the Remote List Path (or the Endpoint Path) of mapping {0}.").format(mapping.name)
		)
	if mapping.direction == "Outbound" and not mapping.list_path:
		errors.append(_("Set the Remote List Path of mapping {0} to reconcile it.").format(mapping.name))
	meta = frappe.get_meta(erpnext_doctype(mapping))
	for label, fieldname in (
		(_("ERPNext Date Field"), date_field(mapping)),
		(_("ERPNext Amount Field"), amount_field(mapping)),
	):
		if fieldname != "creation" and not meta.has_field(fieldname):
			errors.append(_("{0} {1} is not a field of {2}.").format(label, fieldname, meta.name))
	return errors


# --- running -------------------------------------------------------------------------------------------------


def run(reconciliation: str) -> None:
	rec = frappe.get_doc("Reconciliation", reconciliation)
	if rec.status not in ("Queued", "Running"):
		return
	mapping = frappe.get_doc("Mapping", rec.mapping)
	set_run_state(rec.name, status="Running", started_at=now_datetime(), error=None)
	frappe.db.commit()
	try:
		outcome = reconcile(mapping, getdate(rec.from_date), getdate(rec.to_date), rec.name)
	except IntegrationError as error:
		fail(rec.name, error.message)
		return
	except frappe.ValidationError as error:
		fail(rec.name, str(error))
		return
	except Exception as error:
		fail(rec.name, _("The run stopped on an unexpected error: {0}").format(error))
		raise
	open_count = write_outcome(rec.name, mapping, outcome)
	frappe.db.commit()
	publish(rec.name, done=True, status="Completed", differences=open_count)
	if open_count:
		alert_differences(mapping, rec.name, open_count)


def fail(reconciliation: str, message: str) -> None:
	frappe.db.rollback()
	set_run_state(reconciliation, status="Failed", error=message, finished_at=now_datetime())
	frappe.db.commit()
	publish(reconciliation, done=True, status="Failed", error=message)


def reconcile(mapping, from_date: date, to_date: date, reconciliation: str | None = None) -> Outcome:
	"""Classify one period; reads both sides and writes nothing."""
	errors = list_configuration_errors(mapping)
	if errors:
		frappe.throw("\n".join(errors))
	local = local_records(mapping, from_date, to_date)
	reconciler = Reconciler(
		local,
		direction=mapping.direction,
		tolerance=mapping.reconcile_tolerance or 0,
		dead_ids=dead_ids(mapping) if mapping.direction == INBOUND else (),
	)
	spec = list_spec(mapping)
	first, last = from_date.isoformat(), to_date.isoformat()
	number = 0
	for page in remote_pages(mapping, from_date, to_date):
		for record in page.records:
			number += 1
			remote = read_remote(record, spec, number)
			if remote.day is None or first <= remote.day <= last:
				reconciler.add(remote)
		if reconciliation:
			publish(reconciliation, done=False, fetched=number)
	outcome = reconciler.finish()
	if mapping.direction == INBOUND:
		note_deleted_imports(mapping, outcome)
	return outcome


def erpnext_doctype(mapping) -> str:
	return mapping.target_doctype if mapping.direction == INBOUND else mapping.source_doctype


def date_field(mapping) -> str:
	return (mapping.erpnext_date_field or "posting_date").strip()


def amount_field(mapping) -> str:
	return (mapping.erpnext_amount_field or "grand_total").strip()


def binding_scope(mapping) -> dict:
	"""The Integration Binding keys of the mapping's documents, short of the document itself."""
	return {
		"connector": mapping.connector,
		"doctype": erpnext_doctype(mapping),
		"object_type": (mapping.remote_object_type or "").strip(),
	}


def local_records(mapping, from_date: date, to_date: date) -> list[LocalRecord]:
	"""The ERPNext side of the period, with the remote id each document is bound to, in one indexed query:
	outbound, every document the mapping sends (its condition applied); inbound, the documents this
	connector brought in (those with a binding)."""
	doctype = erpnext_doctype(mapping)
	meta = frappe.get_meta(doctype)
	currency = "d.`currency`" if meta.has_field("currency") else "''"
	join = "join" if mapping.direction == INBOUND else "left join"
	submitted = "and d.`docstatus` in (1, 2)" if meta.is_submittable else ""
	rows = frappe.db.sql(
		f"""
		select d.`name`, d.`{date_field(mapping)}`, ifnull(d.`{amount_field(mapping)}`, 0), {currency},
			d.`docstatus`, b.`external_id`
		from `tab{doctype}` d {join} `tabIntegration Binding` b
			on b.`connector` = %(connector)s and b.`reference_doctype` = %(doctype)s
			and b.`remote_object_type` = %(object_type)s and b.`reference_name` = d.`name`
		where d.`{date_field(mapping)}` between %(from)s and %(to)s {submitted}
		""",
		{**binding_scope(mapping), "from": from_date, "to": to_date},
	)
	names = sent_by_condition(mapping, [row[0] for row in rows]) if mapping.direction != INBOUND else None
	return [local_record(row) for row in rows if names is None or row[0] in names]


def local_record(row) -> LocalRecord:
	name, day, amount, currency, docstatus, external_id = row
	return LocalRecord(
		name=name,
		day=getdate(day).isoformat() if day else None,
		amount=float(amount or 0),
		currency=currency or "",
		live=docstatus != 2,
		remote_id=external_id or None,
	)


def sent_by_condition(mapping, names: list[str]) -> set[str] | None:
	"""The names the mapping's condition lets through, read in chunks so a long period stays small. The
	condition sees the document's own fields (its child tables are not read for this)."""
	if not mapping.condition:
		return None
	from integration_hub.mappings import compile_mapping_doc

	_compiled, condition = compile_mapping_doc(mapping)
	passed = set()
	doctype = erpnext_doctype(mapping)
	for start_at in range(0, len(names), LOCAL_CHUNK):
		chunk = names[start_at : start_at + LOCAL_CHUNK]
		for doc in frappe.get_all(doctype, filters={"name": ("in", chunk)}, fields=["*"]):
			if condition(json.loads(frappe.as_json(doc))):
				passed.add(doc.name)
	return passed


def dead_ids(mapping) -> set[str]:
	return set(
		frappe.db.sql_list(
			"""
			select distinct external_id from `tabSync Log`
			where mapping = %s and status = 'Dead' and direction = 'Inbound' and external_id is not null
			""",
			mapping.name,
		)
	)


def note_deleted_imports(mapping, outcome: Outcome) -> None:
	"""A remote record not imported may have been: its document was deleted and the binding stayed."""
	lone = [d.remote_id for d in outcome.differences if d.kind == NOT_IMPORTED and d.remote_id]
	if not lone:
		return
	stale = dict(
		frappe.db.sql(
			"""
			select external_id, reference_name from `tabIntegration Binding`
			where connector = %(connector)s and reference_doctype = %(doctype)s
				and remote_object_type = %(object_type)s and external_id in %(ids)s
			""",
			{**binding_scope(mapping), "ids": lone},
		)
	)
	for difference in outcome.differences:
		if difference.kind == NOT_IMPORTED and difference.remote_id in stale:
			difference.note, difference.note_value = DELETED_IN_ERPNEXT, stale[difference.remote_id]


def list_spec(mapping) -> ListSpec:
	cancelled = frozenset(
		value.strip().lower() for value in (mapping.list_cancelled_statuses or "").split(",") if value.strip()
	)
	id_path = (
		mapping.list_id_path or (mapping.external_id_path if mapping.direction == INBOUND else "") or "id"
	)
	return ListSpec(
		id_path=id_path,
		reference_path=mapping.list_reference_path or "",
		amount_path=mapping.list_amount_path or "",
		currency_path=mapping.list_currency_path or "",
		status_path=mapping.list_status_path or "",
		date_path=mapping.list_date_path or "",
		**({"cancelled_statuses": cancelled} if cancelled else {}),
	)


def remote_pages(mapping, from_date: date, to_date: date):
	"""The remote list of the period, page by page (GET, or the SOAP operation); nothing is written there."""
	runtime = get_connector(mapping.connector)
	params = request_arguments(mapping) if mapping.direction == INBOUND else {}
	date_format = mapping.list_date_format or "%Y-%m-%d"
	if mapping.list_from_param:
		params[mapping.list_from_param] = from_date.strftime(date_format)
	if mapping.list_to_param:
		params[mapping.list_to_param] = to_date.strftime(date_format)
	spec = pagination_spec(mapping)
	if runtime.protocol == "SOAP":
		operation = mapping.list_path or mapping.soap_operation
		return iter_soap_pages(runtime.soap_client(), operation, params, spec, None)
	return iter_pages(runtime.rest_client(), mapping.list_path or mapping.endpoint_path, spec, params, None)


# --- writing the result --------------------------------------------------------------------------------------


def write_outcome(reconciliation: str, mapping, outcome: Outcome) -> int:
	"""Store the differences (earlier accepted ones marked so) and the per-day totals; returns how many are
	open."""
	accepted = accepted_reasons(mapping.name)
	now = now_datetime()
	rows = []
	open_count = 0
	for difference in outcome.differences:
		reason = accepted.get(difference.fingerprint)
		open_count += reason is None
		rows.append(difference_row(reconciliation, mapping, difference, reason, now))
	if rows:
		fields = list(rows[0])
		frappe.db.bulk_insert(
			"Reconciliation Difference", fields, [[row[f] for f in fields] for row in rows], chunk_size=500
		)
	rec = frappe.get_doc("Reconciliation", reconciliation)
	rec.status = "Completed"
	rec.finished_at = now
	rec.erpnext_count = outcome.local_count
	rec.remote_count = outcome.remote_count
	rec.matched_count = outcome.matched
	rec.difference_count = open_count
	rec.accepted_count = len(rows) - open_count
	rec.set("days", [])
	for day, totals in sorted(outcome.days.items()):
		rec.append(
			"days",
			{
				"day": day or None,
				"erpnext_count": totals.local_count,
				"erpnext_total": totals.local_total,
				"remote_count": totals.remote_count,
				"remote_total": totals.remote_total,
				"difference": totals.difference,
			},
		)
	rec.flags.ignore_permissions = True
	rec.save()
	return open_count


def accepted_reasons(mapping: str) -> dict[str, str]:
	return dict(
		frappe.db.sql(
			"""
			select fingerprint, resolution_reason from `tabReconciliation Difference`
			where mapping = %s and resolution = 'Accepted'
			""",
			mapping,
		)
	)


def difference_row(reconciliation: str, mapping, difference: Difference, accepted: str | None, now) -> dict:
	return {
		"name": frappe.generate_hash(length=12),
		"creation": now,
		"modified": now,
		"owner": frappe.session.user,
		"modified_by": frappe.session.user,
		"docstatus": 0,
		"reconciliation": reconciliation,
		"mapping": mapping.name,
		"connector": mapping.connector,
		"difference_class": difference.kind,
		"resolution": "Accepted" if accepted is not None else "Open",
		"resolution_reason": _("Accepted earlier: {0}").format(accepted) if accepted is not None else None,
		"day": difference.day or None,
		"reference_doctype": erpnext_doctype(mapping),
		"reference_name": difference.name,
		"remote_id": difference.remote_id,
		"erpnext_amount": difference.local_amount or 0,
		"currency": difference.currency,
		"erpnext_status": status_word(difference.local_live),
		"remote_amount": difference.remote_amount or 0,
		"remote_currency": difference.remote_currency,
		"remote_status": status_word(difference.remote_live),
		"detail": detail_text(difference),
		"suggested_name": difference.suggested,
		"match_basis": difference.basis,
		"remote_record": json.dumps(difference.record, indent=1, default=str) if difference.record else None,
		"fingerprint": difference.fingerprint,
	}


def status_word(live: bool | None) -> str | None:
	if live is None:
		return None
	return _("Live") if live else _("Cancelled")


def detail_text(difference: Difference) -> str:
	notes = {
		NEVER_DELIVERED: _("Never delivered to the remote."),
		BOUND_TO_GONE_ID: _("Bound to {0}, which the remote no longer lists."),
		DELETED_IN_ERPNEXT: _("Bound to {0}, which was deleted in ERPNext."),
		ALREADY_HELD_AS: _("The document is already held at the remote as {0}."),
	}
	parts = []
	if difference.note in notes:
		parts.append(notes[difference.note].format(difference.note_value or ""))
	if difference.suggested:
		parts.append(
			_("Looks like {0} (same {1}); Adopt binds it.").format(difference.suggested, _(difference.basis))
		)
	return " ".join(parts)


def set_run_state(reconciliation: str, **values) -> None:
	frappe.db.set_value("Reconciliation", reconciliation, values, update_modified=False)


def publish(reconciliation: str, done: bool, **data) -> None:
	frappe.publish_realtime(
		PROGRESS_EVENT,
		{"reconciliation": reconciliation, "done": done, **data},
		doctype="Reconciliation",
		docname=reconciliation,
		after_commit=False,
	)


def alert_differences(mapping, reconciliation: str, count: int) -> None:
	from integration_hub.alerts import raise_alert

	raise_alert(
		mapping.connector,
		"Reconciliation Differences",
		count,
		_("Reconciliation {0} of mapping {1} found {2} differences.").format(
			reconciliation, mapping.name, count
		),
		route=f"/app/reconciliation-difference?reconciliation={reconciliation}&resolution=Open",
	)


# --- fixing --------------------------------------------------------------------------------------------------


def open_differences(names: list[str], classes: tuple[str, ...], action: str) -> list:
	rows = frappe.get_all(
		"Reconciliation Difference",
		filters={"name": ("in", names)},
		fields=["*"],
	)
	if len(rows) != len(set(names)):
		frappe.throw(_("Some of the selected differences no longer exist."))
	refused = [row.name for row in rows if row.difference_class not in classes or row.resolution != "Open"]
	if refused:
		frappe.throw(
			_("{0} is for open differences of class {1}; not: {2}").format(
				action, ", ".join(_(c) for c in classes), ", ".join(refused)
			)
		)
	return rows


def resolve(names: list[str], resolution: str, reason: str | None = None) -> None:
	frappe.db.set_value(
		"Reconciliation Difference",
		{"name": ("in", names)},
		{
			"resolution": resolution,
			"resolution_reason": reason,
			"resolved_by": frappe.session.user,
			"resolved_on": now_datetime(),
		},
		update_modified=True,
	)


def resend(names: list[str]) -> int:
	"""Send again what the remote is missing, or the cancellation it did not get, through the outbox.

	A document's original row is queued again, so the remote sees the idempotency key it saw the first time:
	one that still holds the record answers with it instead of creating a second. A binding to an id the
	remote no longer lists is dropped first, so the delivery creates and binds afresh.
	"""
	rows = open_differences(names, ("Missing at Remote", "Status Differs"), _("Re-send"))
	for row in rows:
		if row.difference_class == "Status Differs" and row.erpnext_status != _("Cancelled"):
			frappe.throw(
				_(
					"{0} is live in ERPNext and cancelled at the remote; ERPNext cannot re-send that. Accept it or cancel the document."
				).format(row.reference_name)
			)
	for row in rows:
		mapping = frappe.get_cached_doc("Mapping", row.mapping)
		events = CANCEL_EVENTS if row.difference_class == "Status Differs" else CREATE_EVENTS
		event = next((op.event for op in mapping.events if op.event in events), None)
		if event is None:
			frappe.throw(_("Mapping {0} sends nothing on {1}.").format(mapping.name, " / ".join(events)))
		if row.difference_class == "Missing at Remote":
			drop_gone_binding(mapping, row.reference_name)
		queue_again(mapping, row.reference_doctype, row.reference_name, event)
	resolve([row.name for row in rows], "Re-sent")
	return len(rows)


def void_at_remote(names: list[str]) -> int:
	"""Void the remote's extra copies of documents through the outbox: the mapping's cancel operation aimed
	at each copy's id. The document, and the copy it is bound to, stay as they are."""
	from integration_hub.outbound.dispatch import queue_outbound

	rows = open_differences(names, ("Duplicate at Remote",), _("Void at Remote"))
	for row in rows:
		mapping = frappe.get_cached_doc("Mapping", row.mapping)
		event = next((op.event for op in mapping.events if op.event in CANCEL_EVENTS), None)
		if event is None:
			frappe.throw(_("Mapping {0} has no cancel operation to void a copy with.").format(mapping.name))
		doc = frappe.get_doc(row.reference_doctype, row.reference_name)
		queue_outbound(mapping.name, doc, event, remote_id=row.remote_id)
	resolve([row.name for row in rows], "Voided at Remote")
	return len(rows)


def drop_gone_binding(mapping, name: str) -> None:
	binding = get_binding(mapping.connector, erpnext_doctype(mapping), name, mapping.remote_object_type)
	if binding:
		frappe.delete_doc("Integration Binding", binding.name, ignore_permissions=True, force=True)


def queue_again(mapping, doctype: str, name: str, event: str) -> None:
	from integration_hub.outbound.dispatch import queue_outbound, schedule_delivery

	row = frappe.db.get_value(
		"Sync Log",
		{
			"mapping": mapping.name,
			"reference_name": name,
			"event": event,
			"direction": "Outbound",
			"targets_remote_id": 0,
		},
		["name", "status"],
		order_by="creation desc",
		as_dict=True,
	)
	if row is None:
		queue_outbound(mapping.name, frappe.get_doc(doctype, name), event)
		return
	if row.status not in ("Queued", "Running"):
		frappe.db.set_value(
			"Sync Log",
			row.name,
			{"status": "Queued", "attempts": 0, "next_attempt_at": now_datetime(), "error": None},
		)
	schedule_delivery(mapping.connector)


def adopt(name: str, document: str | None = None) -> str:
	"""Bind an unknown remote record to the ERPNext document it stands for (the suggestion by default)."""
	(row,) = open_differences([name], ("Unknown at Remote",), _("Adopt"))
	target = document or row.suggested_name
	if not target:
		frappe.throw(_("Choose the {0} this remote record stands for.").format(_(row.reference_doctype)))
	if not frappe.db.exists(row.reference_doctype, target):
		frappe.throw(_("{0} {1} does not exist.").format(_(row.reference_doctype), target))
	mapping = frappe.get_cached_doc("Mapping", row.mapping)
	binding = get_binding(mapping.connector, row.reference_doctype, target, mapping.remote_object_type)
	if binding and binding.external_id != row.remote_id and not bound_id_is_gone(row.reconciliation, target):
		frappe.throw(
			_(
				"{0} is already bound to {1}, which the remote still holds; adopting {2} too would make a duplicate."
			).format(target, binding.external_id, row.remote_id)
		)
	save_binding(
		mapping.connector,
		row.reference_doctype,
		target,
		row.remote_id,
		remote_object_type=mapping.remote_object_type,
		mapping=mapping.name,
		existing=binding,
	)
	resolve([row.name], "Adopted", _("Bound to {0}").format(target))
	frappe.db.set_value("Reconciliation Difference", row.name, "reference_name", target)
	return target


def bound_id_is_gone(reconciliation: str, name: str) -> bool:
	return bool(
		frappe.db.exists(
			"Reconciliation Difference",
			{
				"reconciliation": reconciliation,
				"reference_name": name,
				"difference_class": "Missing at Remote",
			},
		)
	)


def accept(names: list[str], reason: str) -> int:
	if not (reason or "").strip():
		frappe.throw(_("Say why the difference is accepted; the reason is kept with it."))
	rows = open_differences(
		names,
		(
			"Missing at Remote",
			"Unknown at Remote",
			"Amount Differs",
			"Status Differs",
			"Duplicate at Remote",
			"Not Imported",
			"Dead in Sync Log",
		),
		_("Accept"),
	)
	resolve([row.name for row in rows], "Accepted", reason.strip())
	return len(rows)


def repull(names: list[str]) -> int:
	"""Bring in again what was not imported, from the record the run read (no fetch); Dead rows are retried."""
	from integration_hub.inbound.apply import apply_rows, enqueue_apply, stage_records

	rows = open_differences(names, ("Not Imported", "Dead in Sync Log", "Amount Differs"), _("Re-pull"))
	for row in rows:
		mapping = frappe.get_cached_doc("Mapping", row.mapping)
		if mapping.direction != INBOUND or not row.remote_record:
			frappe.throw(
				_("{0} was not read from an inbound mapping's list; re-send it instead.").format(row.name)
			)
	staged = []
	for row in rows:
		mapping = frappe.get_cached_doc("Mapping", row.mapping)
		if row.difference_class == "Dead in Sync Log":
			retry_dead_rows(mapping, row.remote_id)
			continue
		drop_binding_of_deleted(mapping, row.remote_id)
		staged += stage_records(mapping, [json.loads(row.remote_record)], "reconcile").rows
	resolve([row.name for row in rows], "Re-pulled")
	frappe.db.commit()
	apply_rows(staged)
	for mapping in {row.mapping for row in rows if row.difference_class == "Dead in Sync Log"}:
		enqueue_apply(mapping)
	return len(rows)


def retry_dead_rows(mapping, external_id: str) -> None:
	frappe.db.sql(
		"""
		update `tabSync Log` set status = 'Queued', attempts = 0, next_attempt_at = %(now)s, error = null
		where mapping = %(mapping)s and external_id = %(id)s and status = 'Dead' and direction = 'Inbound'
		""",
		{"mapping": mapping.name, "id": external_id, "now": now_datetime()},
	)


def drop_binding_of_deleted(mapping, external_id: str) -> None:
	doctype = erpnext_doctype(mapping)
	filters = binding_filters(mapping.connector, doctype, mapping.remote_object_type) | {
		"external_id": external_id
	}
	binding = frappe.db.get_value("Integration Binding", filters, ["name", "reference_name"], as_dict=True)
	if binding and not frappe.db.exists(doctype, binding.reference_name):
		frappe.db.delete("Integration Binding", {"name": binding.name})


def side_by_side(row) -> list[dict]:
	"""Outbound: the document as the mapping sends it next to the remote record. Inbound: the remote record
	as the mapping would write it next to the document's values for the same fields."""
	from integration_hub.engine.errors import MappingError
	from integration_hub.engine.reconcile import project
	from integration_hub.engine.reconcile import side_by_side as compare_fields
	from integration_hub.mappings import compile_mapping_doc

	mapping = frappe.get_cached_doc("Mapping", row.mapping)
	remote = json.loads(row.remote_record) if row.remote_record else {}
	name = row.reference_name or row.suggested_name
	document = {}
	if name and frappe.db.exists(row.reference_doctype, name):
		frappe.has_permission(row.reference_doctype, "read", name, throw=True)
		document = frappe.get_doc(row.reference_doctype, name).as_dict(convert_dates_to_str=True)
	compiled, _condition = compile_mapping_doc(mapping)
	context = {"event": "reconcile", "remote_id": row.remote_id, "connector": mapping.connector}
	tolerance = mapping.reconcile_tolerance or 0
	try:
		if mapping.direction == INBOUND:
			written = compiled.apply(remote, context) if remote else {}
			return compare_fields(project(document, written), written, tolerance)
		return compare_fields(compiled.apply(document, context) if document else {}, remote, tolerance)
	except MappingError as error:
		frappe.throw(_("The mapping could not lay this record out: {0}").format(error.message))
