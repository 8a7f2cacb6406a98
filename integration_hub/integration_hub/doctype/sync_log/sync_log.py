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
	"""Indexes for the outbox (status, next_attempt_at), a document's rows, the Connector form's waiting rows
	(connector, status), the workspace cards (status, direction, modified: counts by status and "delivered in
	the last 24 h" as one index range) and its charts (modified, status, direction, connector: a time window
	grouped by any of them, read from the index alone)."""
	frappe.db.add_index("Sync Log", ["status", "next_attempt_at"])
	frappe.db.add_index("Sync Log", ["reference_doctype", "reference_name"])
	frappe.db.add_index("Sync Log", ["connector", "status"])
	frappe.db.add_index("Sync Log", ["mapping", "status", "next_attempt_at"])
	frappe.db.add_index("Sync Log", ["idempotency_key"])
	frappe.db.add_unique("Sync Log", ["connector", "event_id"], constraint_name="unique_connector_event")
	frappe.db.add_index("Sync Log", ["status", "direction", "modified"])
	frappe.db.add_index("Sync Log", ["modified", "status", "direction", "connector"])
