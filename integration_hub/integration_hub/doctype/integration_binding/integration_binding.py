# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class IntegrationBinding(Document):
	def validate(self):
		self.remote_object_type = (self.remote_object_type or "").strip()
		self.external_id = (self.external_id or "").strip()


def on_doctype_update():
	"""One external id per document and one document per external id, enforced by the database itself."""
	frappe.db.add_unique(
		"Integration Binding",
		["connector", "reference_doctype", "remote_object_type", "external_id"],
		constraint_name="unique_external_id",
	)
	frappe.db.add_unique(
		"Integration Binding",
		["connector", "reference_doctype", "remote_object_type", "reference_name"],
		constraint_name="unique_reference",
	)
