# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document

from integration_hub.logs import clear_finished_rows


class SyncLog(Document):
	@staticmethod
	def clear_old_logs(days=30):
		"""Log Settings calls this; rows still waiting to be delivered are never cleared."""
		clear_finished_rows(days)


def on_doctype_update():
	frappe.db.add_index("Sync Log", ["status", "next_attempt_at"])
	frappe.db.add_index("Sync Log", ["reference_doctype", "reference_name"])
	frappe.db.add_index("Sync Log", ["connector", "status"])
	frappe.db.add_index("Sync Log", ["mapping", "status", "next_attempt_at"])
	frappe.db.add_index("Sync Log", ["idempotency_key"])
	frappe.db.add_unique("Sync Log", ["connector", "event_id"], constraint_name="unique_connector_event")
