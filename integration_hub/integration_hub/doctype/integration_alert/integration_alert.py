# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class IntegrationAlert(Document):
	"""The state of one kind of alert for one connector: what was raised, when recipients were last told,
	and whether it has recovered. Written by ``integration_hub.alerts`` only."""


def on_doctype_update():
	"""One record per connector and kind (the quiet period is read from it), and the recovery check's index."""
	frappe.db.add_unique("Integration Alert", ["connector", "kind"], constraint_name="unique_connector_kind")
	frappe.db.add_index("Integration Alert", ["connector", "status"])
