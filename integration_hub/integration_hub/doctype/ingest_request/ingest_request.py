# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class IngestRequest(Document):
	"""One call of the ingest API per user and Idempotency-Key, with the answer it got, for replays."""


def on_doctype_update():
	frappe.db.add_unique("Ingest Request", ["user", "idempotency_key"], constraint_name="unique_user_key")
