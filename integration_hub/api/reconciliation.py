"""Desk actions for reconciliation: start a run from a Mapping, compare one record, and fix differences."""

from __future__ import annotations

import frappe
from frappe import _

from integration_hub import reconciliation
from integration_hub.api.sync_log import name_list

MANAGERS = ("Integration Manager", "System Manager")


def names_of(names) -> list[str]:
	return name_list(names, _("Select at least one difference."))


@frappe.whitelist(methods=["POST"])
def start(mapping: str, from_date: str, to_date: str) -> str:
	"""Queue a reconciliation of the mapping for the days given; returns the Reconciliation's name."""
	frappe.only_for(MANAGERS)
	frappe.has_permission("Mapping", "read", mapping, throw=True)
	return reconciliation.start(mapping, from_date, to_date)


@frappe.whitelist(methods=["POST"])
def resend(names) -> dict:
	frappe.only_for(MANAGERS)
	return {"resent": reconciliation.resend(names_of(names))}


@frappe.whitelist(methods=["POST"])
def void_at_remote(names) -> dict:
	frappe.only_for(MANAGERS)
	return {"voided": reconciliation.void_at_remote(names_of(names))}


@frappe.whitelist(methods=["POST"])
def repull(names) -> dict:
	frappe.only_for(MANAGERS)
	return {"repulled": reconciliation.repull(names_of(names))}


@frappe.whitelist(methods=["POST"])
def adopt(name: str, document: str | None = None) -> dict:
	frappe.only_for(MANAGERS)
	return {"bound_to": reconciliation.adopt(name, document or None)}


@frappe.whitelist(methods=["POST"])
def accept(names, reason: str) -> dict:
	frappe.only_for(MANAGERS)
	return {"accepted": reconciliation.accept(names_of(names), reason)}


@frappe.whitelist()
def compare(name: str) -> list[dict]:
	"""ERPNext's values and the remote's for one difference, field by field, the differing ones marked."""
	frappe.has_permission("Reconciliation Difference", "read", name, throw=True)
	row = frappe.get_doc("Reconciliation Difference", name)
	return reconciliation.side_by_side(row)
