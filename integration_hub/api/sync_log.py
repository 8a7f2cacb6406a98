"""Desk actions on Sync Log rows: retry and cancel, one or many."""

from __future__ import annotations

import json

import frappe
from frappe import _
from frappe.utils import now_datetime

from integration_hub.connectors import secret_values
from integration_hub.engine.readable import readable
from integration_hub.engine.redact import redact_body
from integration_hub.inbound.apply import enqueue_apply
from integration_hub.outbound.dispatch import enqueue_delivery

RETRYABLE_STATUSES = ("Failed", "Dead", "Cancelled", "Skipped")
CANCELLABLE_STATUSES = ("Queued", "Failed")


def name_list(names, when_empty: str) -> list[str]:
	"""The names a Desk action was given: a list, a JSON list, or one name."""
	if isinstance(names, str):
		names = json.loads(names) if names.startswith("[") else [names]
	if not names:
		frappe.throw(when_empty)
	return list(names)


def load_rows(names, fields: list[str]) -> list:
	"""The named rows, after checking the user may change them: one permission check for the DocType and
	one permission-filtered query for the rows, however many are selected (a bulk action is one request
	and a handful of statements, not one round of checks per row)."""
	names = name_list(names, _("Select at least one Sync Log row."))
	frappe.has_permission("Sync Log", "write", throw=True)
	rows = frappe.get_list(
		"Sync Log", filters={"name": ("in", list(names))}, fields=["name", "status", *fields]
	)
	if len(rows) != len(set(names)):
		frappe.throw(_("Some of the selected Sync Log rows no longer exist or are not yours to change."))
	return rows


@frappe.whitelist(methods=["POST"])
def retry(names) -> dict:
	"""Run the rows again now with a fresh attempt budget: outbound rows are resent with their original
	idempotency keys, inbound rows are re-applied from their stored payload without fetching again."""
	rows = load_rows(names, ["direction", "connector", "mapping"])
	refused = [r.name for r in rows if r.status not in RETRYABLE_STATUSES]
	if refused:
		frappe.throw(
			_("Only failed, dead, skipped or cancelled rows can be retried: {0}").format(", ".join(refused))
		)
	set_status_where(
		[row.name for row in rows],
		RETRYABLE_STATUSES,
		{"status": "Queued", "attempts": 0, "next_attempt_at": now_datetime(), "error": None},
	)
	for connector in sorted({row.connector for row in rows if row.direction == "Outbound"}):
		frappe.db.after_commit.add(lambda connector=connector: enqueue_delivery(connector))
	for mapping in sorted({row.mapping for row in rows if row.direction == "Inbound"}):
		frappe.db.after_commit.add(lambda mapping=mapping: enqueue_apply(mapping))
	return {"queued": len(rows)}


@frappe.whitelist(methods=["POST"])
def cancel(names) -> dict:
	"""Stop rows that have not been delivered yet; they stay in the log as Cancelled."""
	rows = load_rows(names, [])
	refused = [r.name for r in rows if r.status not in CANCELLABLE_STATUSES]
	if refused:
		frappe.throw(_("Only queued or failed rows can be cancelled: {0}").format(", ".join(refused)))
	set_status_where(
		[row.name for row in rows],
		CANCELLABLE_STATUSES,
		{
			"status": "Cancelled",
			"next_attempt_at": None,
			"error": _("Cancelled by {0}").format(frappe.session.user),
		},
	)
	return {"cancelled": len(rows)}


def set_status_where(names: list[str], allowed_statuses: tuple[str, ...], values: dict) -> None:
	"""Update only rows still in an allowed status, so a row a worker claimed meanwhile is left alone."""
	log = frappe.qb.DocType("Sync Log")
	query = frappe.qb.update(log).set(log.modified, now_datetime()).set(log.modified_by, frappe.session.user)
	for field, value in values.items():
		query = query.set(log[field], value)
	query.where(log.name.isin(names) & log.status.isin(allowed_statuses)).run()


@frappe.whitelist()
def readable_bodies(name: str) -> dict:
	"""The row's payload, request and response laid out for reading (JSON or XML indented), with the
	connector's secrets and sensitive keys masked once more, whatever was stored."""
	frappe.has_permission("Sync Log", "read", name, throw=True)
	row = frappe.db.get_value("Sync Log", name, ["connector", "payload", "request", "response"], as_dict=True)
	secrets = secret_values(row.connector)
	return {
		field: readable(redact_body(row.get(field) or "", secrets))
		for field in ("payload", "request", "response")
	}
