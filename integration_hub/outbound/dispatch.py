"""The one doc-event entry point for outbound sync: a transactional outbox.

Every document event of every DocType passes through :func:`on_document_event`. When no enabled
mapping listens for the (doctype, event) pair it returns after a dict lookup. Otherwise it writes a
Queued Sync Log row in the document's own transaction and, once that transaction commits, asks a
worker to deliver. If the transaction rolls back, the row disappears with the document and nothing
is sent; if Redis is down at commit, the scheduler sweep finds the row a minute later.
"""

from __future__ import annotations

import json

import frappe
from frappe.utils import now_datetime

from integration_hub.engine.mapping import render_template
from integration_hub.jobs import enqueue_in_slot
from integration_hub.logs import new_log_name
from integration_hub.mappings import clear_outbound_index, compile_mapping_doc, get_outbound_index

DELIVERY_JOB = "integration_hub.outbound.outbox.deliver"
DELIVERY_JOB_TIMEOUT = 300
SNAPSHOT_EVENTS = frozenset({"on_trash"})
MESSAGE_EVENT = "message"
"""The event of a row that carries a ready request instead of a mapped document (see ``queue_message``)."""


def on_document_event(doc, method: str) -> None:
	if frappe.flags.in_install or frappe.flags.in_migrate or frappe.flags.in_patch:
		return
	mapping_names = get_outbound_index().get(doc.doctype, {}).get(method)
	if mapping_names:
		for mapping_name in mapping_names:
			queue_outbound(mapping_name, doc, method)


def queue_outbound(mapping_name: str, doc, event: str, remote_id: str | None = None) -> str | None:
	"""Write the outbox row for one mapping and one document event; returns the Sync Log name.

	``remote_id`` aims the row at that remote object instead of the one the document is bound to (voiding a
	duplicate the remote holds of the document); such a row leaves the binding as it is.
	"""
	try:
		mapping = frappe.get_cached_doc("Mapping", mapping_name)
	except frappe.DoesNotExistError:
		clear_outbound_index()
		return None
	if doc.flags.get("integration_hub_source") == mapping.connector:
		return None
	_, condition = compile_mapping_doc(mapping)
	document = None
	if mapping.condition or mapping.idempotency_key_template or event in SNAPSHOT_EVENTS:
		document = doc.as_dict(convert_dates_to_str=True)
		if not condition(document):
			return None

	log = new_outbound_row(mapping.connector, event, doc.doctype, doc.name, mapping=mapping.name)
	if remote_id:
		log.external_id = remote_id
		log.targets_remote_id = 1
	log.idempotency_key = idempotency_key(mapping, log, document, event)
	if event in SNAPSHOT_EVENTS:
		log.payload = json.dumps(document, default=str)
	log.db_insert()
	schedule_delivery(mapping.connector)
	return log.name


def queue_message(
	connector: str,
	path: str,
	body: dict,
	reference_doctype: str | None = None,
	reference_name: str | None = None,
) -> str:
	"""Write an outbox row that carries a ready JSON POST (an alert's chat post) rather than a mapped document.

	It has no mapping: its payload holds the path and the body, and the worker sends it with the connector's
	retries, backoff and circuit breaker like any other row. Returns the Sync Log name."""
	log = new_outbound_row(connector, MESSAGE_EVENT, reference_doctype, reference_name)
	log.idempotency_key = f"ih-{log.name}"
	log.payload = json.dumps({"path": path, "body": body}, default=str)
	log.db_insert()
	schedule_delivery(connector)
	return log.name


def new_outbound_row(
	connector: str,
	event: str,
	reference_doctype: str | None,
	reference_name: str | None,
	mapping: str | None = None,
):
	"""A Queued outbound Sync Log row, due now, not yet inserted (the caller sets its key and payload)."""
	log = frappe.new_doc("Sync Log")
	log.name = new_log_name()
	now = now_datetime()
	log.update(
		{
			"status": "Queued",
			"direction": "Outbound",
			"connector": connector,
			"mapping": mapping,
			"event": event,
			"reference_doctype": reference_doctype,
			"reference_name": reference_name,
			"attempts": 0,
			"next_attempt_at": now,
			"owner": frappe.session.user,
			"creation": now,
			"modified": now,
			"modified_by": frappe.session.user,
		}
	)
	return log


def idempotency_key(mapping, log, document: dict | None, event: str) -> str:
	"""A key fixed when the row is written, so every retry of the row sends the same one."""
	if mapping.idempotency_key_template:
		context = {
			"event": event,
			"sync_log": log.name,
			"connector": mapping.connector,
			"mapping": mapping.name,
		}
		return render_template(
			mapping.idempotency_key_template, {"doc": document, "context": context, **context}
		)
	return f"ih-{log.name}"


def schedule_delivery(connector: str) -> None:
	"""Enqueue one delivery job per connector once the current transaction commits."""
	pending = getattr(frappe.local, "integration_hub_pending_connectors", None)
	if pending is None:
		pending = frappe.local.integration_hub_pending_connectors = set()
	if not pending:
		frappe.db.after_commit.add(enqueue_pending_deliveries)
		frappe.db.after_rollback.add(pending.clear)
	pending.add(connector)


def enqueue_pending_deliveries() -> None:
	pending = getattr(frappe.local, "integration_hub_pending_connectors", None) or set()
	connectors = sorted(pending)
	pending.clear()
	for connector in connectors:
		enqueue_delivery(connector)


def enqueue_delivery(connector: str) -> bool:
	"""Ask a worker to deliver the connector's due rows. A lost enqueue costs a minute, not a row."""
	return enqueue_in_slot(DELIVERY_JOB, delivery_slot(connector), DELIVERY_JOB_TIMEOUT, connector=connector)


def delivery_slot(connector: str) -> str:
	"""At most one delivery job per connector holds this slot: the one that will still look for due rows."""
	return f"integration_hub:deliver:{connector}"
