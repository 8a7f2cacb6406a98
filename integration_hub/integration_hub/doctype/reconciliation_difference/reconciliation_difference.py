# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class ReconciliationDifference(Document):
	"""A record the two sides do not agree on, with what was done about it."""


def on_doctype_update():
	frappe.db.add_index("Reconciliation Difference", ["mapping", "resolution"])
	frappe.db.add_index("Reconciliation Difference", ["reconciliation", "difference_class"])
