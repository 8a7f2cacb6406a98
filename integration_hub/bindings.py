"""Integration Binding: which remote object stands for which ERPNext document, per connector.

The database's unique indexes are the last word; these helpers only read and upsert.
"""

from __future__ import annotations

import frappe
from frappe.utils import now_datetime

LOOK_UP = object()
"""Passed as ``existing`` when the caller has not already read the binding."""


def binding_filters(connector: str, doctype: str, remote_object_type: str | None) -> dict:
	return {
		"connector": connector,
		"reference_doctype": doctype,
		"remote_object_type": remote_object_type or "",
	}


def get_remote_id(
	connector: str, doctype: str, name: str, remote_object_type: str | None = None
) -> str | None:
	filters = binding_filters(connector, doctype, remote_object_type) | {"reference_name": name}
	return frappe.db.get_value("Integration Binding", filters, "external_id")


def get_binding(connector: str, doctype: str, name: str, remote_object_type: str | None = None):
	filters = binding_filters(connector, doctype, remote_object_type) | {"reference_name": name}
	return frappe.db.get_value(
		"Integration Binding", filters, ["name", "external_id", "last_payload_hash"], as_dict=True
	)


def get_bindings(
	connector: str, doctype: str, names: list[str], remote_object_type: str | None = None
) -> dict:
	"""{reference name: binding} for many documents in one query."""
	if not names:
		return {}
	rows = frappe.get_all(
		"Integration Binding",
		filters=binding_filters(connector, doctype, remote_object_type) | {"reference_name": ("in", names)},
		fields=["name", "reference_name", "external_id", "last_payload_hash"],
	)
	return {row.reference_name: row for row in rows}


def find_document(connector: str, doctype: str, external_id: str, remote_object_type: str | None = None):
	"""The ERPNext document bound to a remote id, or None."""
	filters = binding_filters(connector, doctype, remote_object_type) | {"external_id": external_id}
	return frappe.db.get_value("Integration Binding", filters, "reference_name")


def save_binding(
	connector: str,
	doctype: str,
	name: str,
	external_id: str | None,
	*,
	remote_object_type: str | None = None,
	mapping: str | None = None,
	payload_hash: str | None = None,
	existing=LOOK_UP,
) -> str:
	"""Create or update the binding of one document; keeps the known remote id when none is given.

	Written straight to the table: the unique indexes, not Python validation, decide what may exist,
	and a worker saving thousands of bindings should not pay for link checks it cannot fail.
	"""
	if existing is LOOK_UP:
		existing = get_binding(connector, doctype, name, remote_object_type)
	values = {"last_synced_at": now_datetime(), "last_payload_hash": payload_hash, "mapping": mapping}
	if existing:
		if external_id:
			values["external_id"] = str(external_id)
		frappe.db.set_value("Integration Binding", existing.name, values, update_modified=False)
		return existing.name
	if not external_id:
		return ""
	binding = frappe.new_doc("Integration Binding")
	binding.update(
		{
			**binding_filters(connector, doctype, remote_object_type),
			"reference_name": name,
			"external_id": str(external_id).strip(),
			"owner": frappe.session.user,
			"creation": values["last_synced_at"],
			"modified": values["last_synced_at"],
			"modified_by": frappe.session.user,
			**values,
		}
	)
	binding.name = frappe.generate_hash(length=10)
	binding.db_insert()
	return binding.name
