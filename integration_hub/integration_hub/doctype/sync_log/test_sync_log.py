# Copyright (c) 2026, Integration Hub Contributors and contributors
# See license.txt

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from integration_hub.api.sync_log import cancel, retry
from integration_hub.integration_hub.doctype.connector.test_connector import make_user
from integration_hub.integration_hub.doctype.sync_log.sync_log import SyncLog
from integration_hub.mappings import clear_outbound_index
from integration_hub.tests.utils import make_connector


def sync_log(connector: str, status: str = "Queued", **values):
	return frappe.get_doc(
		{"doctype": "Sync Log", "status": status, "direction": "Outbound", "connector": connector, **values}
	)


class TestSyncLog(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.connector = make_connector("IH Test Log Conn", "https://api.example.com")
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_outbound_index()

	def test_created_by_the_system(self):
		log = sync_log(self.connector).insert(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("Sync Log", log.name, "status"), "Queued")

	def test_people_cannot_create_sync_logs(self):
		users = [
			make_user("ih-plain-user@example.com", ["Accounts User"]),
			make_user("ih-manager@example.com", ["Integration Manager"]),
		]
		for email in users:
			with self.subTest(user=email):
				frappe.set_user(email)
				with self.assertRaises(frappe.PermissionError):
					sync_log(self.connector).insert()

	def test_readable_by_integration_manager_not_by_others(self):
		log = sync_log(self.connector).insert(ignore_permissions=True)
		manager = make_user("ih-manager@example.com", ["Integration Manager"])
		plain = make_user("ih-plain-user@example.com", ["Accounts User"])
		frappe.set_user(manager)
		self.assertTrue(frappe.has_permission("Sync Log", "read", log.name))
		frappe.set_user(plain)
		self.assertFalse(frappe.has_permission("Sync Log", "read", log.name))

	def test_clearing_old_logs_keeps_waiting_rows(self):
		old = add_days(now_datetime(), -40)
		done = sync_log(self.connector, "Success").insert(ignore_permissions=True)
		waiting = sync_log(self.connector, "Failed").insert(ignore_permissions=True)
		for name in (done.name, waiting.name):
			frappe.db.set_value("Sync Log", name, "modified", old, update_modified=False)
		SyncLog.clear_old_logs(days=30)
		self.assertFalse(frappe.db.exists("Sync Log", done.name))
		self.assertTrue(frappe.db.exists("Sync Log", waiting.name))

	def test_cancel_stops_waiting_rows_only(self):
		waiting = sync_log(self.connector, "Queued").insert(ignore_permissions=True)
		done = sync_log(self.connector, "Success").insert(ignore_permissions=True)
		self.assertEqual(cancel([waiting.name]), {"cancelled": 1})
		self.assertEqual(frappe.db.get_value("Sync Log", waiting.name, "status"), "Cancelled")
		with self.assertRaisesRegex(frappe.ValidationError, "Only queued or failed rows"):
			cancel([done.name])
		self.assertEqual(frappe.db.get_value("Sync Log", done.name, "status"), "Success")

	def test_retry_requeues_dead_rows_and_refuses_successful_ones(self):
		dead = sync_log(self.connector, "Dead", attempts=8, error="HTTP 400").insert(ignore_permissions=True)
		done = sync_log(self.connector, "Success").insert(ignore_permissions=True)
		self.assertEqual(retry([dead.name]), {"queued": 1})
		row = frappe.db.get_value("Sync Log", dead.name, ["status", "attempts", "error"], as_dict=True)
		self.assertEqual((row.status, row.attempts, row.error), ("Queued", 0, None))
		with self.assertRaisesRegex(frappe.ValidationError, "can be retried"):
			retry([done.name])

	def test_people_without_the_role_cannot_retry_or_cancel(self):
		dead = sync_log(self.connector, "Dead").insert(ignore_permissions=True)
		frappe.set_user(make_user("ih-plain-user@example.com", ["Accounts User"]))
		for action in (retry, cancel):
			with self.subTest(action=action.__name__), self.assertRaises(frappe.PermissionError):
				action([dead.name])
		frappe.set_user("Administrator")
		self.assertEqual(frappe.db.get_value("Sync Log", dead.name, "status"), "Dead")
