"""Install and uninstall steps: the Integration Manager role lives and dies with the app."""

import frappe

INTEGRATION_MANAGER = "Integration Manager"


def ensure_roles() -> None:
	if not frappe.db.exists("Role", INTEGRATION_MANAGER):
		frappe.get_doc(
			{"doctype": "Role", "role_name": INTEGRATION_MANAGER, "desk_access": 1, "is_custom": 0}
		).insert(ignore_permissions=True)


def before_uninstall() -> None:
	frappe.db.delete("Has Role", {"role": INTEGRATION_MANAGER})
	frappe.db.delete("Custom DocPerm", {"role": INTEGRATION_MANAGER})
	if frappe.db.exists("Role", INTEGRATION_MANAGER):
		frappe.delete_doc("Role", INTEGRATION_MANAGER, ignore_permissions=True, force=True)
