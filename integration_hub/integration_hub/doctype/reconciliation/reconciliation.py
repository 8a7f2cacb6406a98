# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import date_diff, getdate

MAX_DAYS = 366


class Reconciliation(Document):
	"""One comparison of a mapping's ERPNext documents with the remote's list, for a range of days."""

	def validate(self):
		self.validate_dates()
		self.validate_mapping()

	def validate_dates(self):
		if getdate(self.from_date) > getdate(self.to_date):
			frappe.throw(_("From Date must not be after To Date."))
		if date_diff(self.to_date, self.from_date) >= MAX_DAYS:
			frappe.throw(_("Reconcile at most {0} days at a time.").format(MAX_DAYS))

	def validate_mapping(self):
		from integration_hub.reconciliation import list_configuration_errors

		errors = list_configuration_errors(frappe.get_cached_doc("Mapping", self.mapping))
		if errors:
			frappe.throw("<br>".join(errors), title=_("This mapping cannot be reconciled yet"))

	def after_insert(self):
		from integration_hub.reconciliation import enqueue_run

		frappe.db.after_commit.add(lambda: enqueue_run(self.name))
