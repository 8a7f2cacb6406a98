"""Desk actions on Sync Log rows: retry and cancel, one or many."""

from __future__ import annotations

import json

import frappe
from frappe import _
from frappe.utils import now_datetime

from integration_hub.dispatch import enqueue_delivery

RETRYABLE_STATUSES = ("Failed", "Dead", "Cancelled", "Skipped")
CANCELLABLE_STATUSES = ("Queued", "Failed")


def parse_names(names) -> list[str]:
	if isinstance(names, str):
		names = json.loads(names) if names.startswith("[") else [names]
	if not names:
		frappe.throw(_("Select at least one Sync Log row."))
	return list(names)


@frappe.whitelist(methods=["POST"])
def retry(names) -> dict:
	"""Send the rows again now, with a fresh attempt budget and their original idempotency keys."""
	names = parse_names(names)
	rows = frappe.get_all(
		"Sync Log", filters={"name": ("in", names)}, fields=["name", "status", "direction", "connector"]
	)
	for row in rows:
		frappe.has_permission("Sync Log", "write", row.name, throw=True)
	refused = [r.name for r in rows if r.status not in RETRYABLE_STATUSES or r.direction != "Outbound"]
	if refused:
		frappe.throw(
			_("Only failed, dead, skipped or cancelled outbound rows can be retried: {0}").format(
				", ".join(refused)
			)
		)
	now = now_datetime()
	for row in rows:
		frappe.db.set_value(
			"Sync Log", row.name, {"status": "Queued", "attempts": 0, "next_attempt_at": now, "error": None}
		)
	for connector in sorted({row.connector for row in rows}):
		frappe.db.after_commit.add(lambda connector=connector: enqueue_delivery(connector))
	return {"queued": len(rows)}


@frappe.whitelist(methods=["POST"])
def cancel(names) -> dict:
	"""Stop rows that have not been delivered yet; they stay in the log as Cancelled."""
	names = parse_names(names)
	rows = frappe.get_all("Sync Log", filters={"name": ("in", names)}, fields=["name", "status"])
	for row in rows:
		frappe.has_permission("Sync Log", "write", row.name, throw=True)
	refused = [r.name for r in rows if r.status not in CANCELLABLE_STATUSES]
	if refused:
		frappe.throw(_("Only queued or failed rows can be cancelled: {0}").format(", ".join(refused)))
	for row in rows:
		frappe.db.set_value(
			"Sync Log",
			row.name,
			{
				"status": "Cancelled",
				"next_attempt_at": None,
				"error": _("Cancelled by {0}").format(frappe.session.user),
			},
		)
	return {"cancelled": len(rows)}
