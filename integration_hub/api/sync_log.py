"""Desk actions on Sync Log rows: retry and cancel, one or many."""

from __future__ import annotations

import json

import frappe
from frappe import _
from frappe.utils import now_datetime

from integration_hub.inbound.apply import enqueue_apply
from integration_hub.outbound.dispatch import enqueue_delivery

RETRYABLE_STATUSES = ("Failed", "Dead", "Cancelled", "Skipped")
CANCELLABLE_STATUSES = ("Queued", "Failed")


def load_rows(names, fields: list[str]) -> list:
	"""The named rows, after checking the user may change each one."""
	if isinstance(names, str):
		names = json.loads(names) if names.startswith("[") else [names]
	if not names:
		frappe.throw(_("Select at least one Sync Log row."))
	frappe.has_permission("Sync Log", "write", throw=True)
	rows = frappe.get_all(
		"Sync Log", filters={"name": ("in", list(names))}, fields=["name", "status", *fields]
	)
	if len(rows) != len(set(names)):
		frappe.throw(_("Some of the selected Sync Log rows no longer exist."))
	for row in rows:
		frappe.has_permission("Sync Log", "write", row.name, throw=True)
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
