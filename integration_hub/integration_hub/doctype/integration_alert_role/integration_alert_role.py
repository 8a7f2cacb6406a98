# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

from frappe.model.document import Document


class IntegrationAlertRole(Document):
	pass
