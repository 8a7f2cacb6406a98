"""Install and uninstall steps: the app's roles live and die with the app."""

import frappe

INTEGRATION_MANAGER = "Integration Manager"
INTEGRATION_INGEST = "Integration Ingest"
"""A narrow role for REST API consumers (an offline POS, a branch site) that may only post records."""
ROLES = (INTEGRATION_MANAGER, INTEGRATION_INGEST)


def ensure_roles() -> None:
	for role in ROLES:
		if not frappe.db.exists("Role", role):
			frappe.get_doc({"doctype": "Role", "role_name": role, "desk_access": 1, "is_custom": 0}).insert(
				ignore_permissions=True
			)


def before_uninstall() -> None:
	for role in ROLES:
		frappe.db.delete("Has Role", {"role": role})
		frappe.db.delete("Custom DocPerm", {"role": role})
		if frappe.db.exists("Role", role):
			frappe.delete_doc("Role", role, ignore_permissions=True, force=True)
