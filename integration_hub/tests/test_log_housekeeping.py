"""Sync Log housekeeping: successful rows shed their bodies after the setting's days, clearing goes in chunks."""

from __future__ import annotations

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from integration_hub import logs
from integration_hub.logs import clear_finished_rows, new_log_name, trim_successful_bodies

CONNECTOR = "IH Housekeeping"


def old_row(status: str, days_ago: int, **values) -> str:
	name = new_log_name()
	when = add_days(now_datetime(), -days_ago)
	frappe.db.sql(
		"""insert into `tabSync Log` (name, status, direction, connector, event, attempts, request, response,
			payload, error, creation, modified, owner, modified_by)
		values (%(name)s, %(status)s, 'Outbound', %(connector)s, 'on_submit', 1, '{"body": 1}', '{"ok": true}',
			'{"doc": 1}', %(error)s, %(when)s, %(when)s, 'Administrator', 'Administrator')""",
		{"name": name, "status": status, "connector": CONNECTOR, "when": when, "error": values.get("error")},
	)
	return name


class TestLogHousekeeping(FrappeTestCase):
	def setUp(self):
		frappe.db.delete("Sync Log", {"connector": CONNECTOR})
		frappe.db.set_single_value("Integration Hub Settings", "keep_bodies_days", 5)

	def bodies(self, name: str):
		return frappe.db.get_value("Sync Log", name, ["request", "response", "payload"])

	def test_successful_rows_shed_their_bodies_after_the_setting_and_failures_keep_theirs(self):
		old_success = old_row("Success", 6)
		new_success = old_row("Success", 2)
		old_dead = old_row("Dead", 6, error="remote said no")
		old_failed = old_row("Failed", 6)
		trim_successful_bodies()
		self.assertEqual(self.bodies(old_success), (None, None, None))
		self.assertEqual(frappe.db.get_value("Sync Log", old_success, "status"), "Success")
		self.assertIsNotNone(self.bodies(new_success)[0])
		self.assertIsNotNone(self.bodies(old_dead)[0])
		self.assertIsNotNone(self.bodies(old_failed)[0])

	def test_clearing_deletes_old_finished_rows_in_chunks_and_never_waiting_ones(self):
		finished = [old_row("Success", 40) for _ in range(25)]
		waiting = old_row("Failed", 40)
		recent = old_row("Success", 3)
		statements = []
		original = logs.CHUNK
		logs.CHUNK = 10
		real_sql = frappe.db.sql

		def counting_sql(query, *args, **kwargs):
			if str(query).lstrip().lower().startswith("delete from `tabsync log`"):
				statements.append(query)
			return real_sql(query, *args, **kwargs)

		frappe.db.sql = counting_sql
		try:
			cleared = clear_finished_rows(30)
		finally:
			frappe.db.sql = real_sql
			logs.CHUNK = original
		self.assertGreaterEqual(cleared, 25)
		self.assertGreaterEqual(len(statements), 3)
		self.assertFalse(frappe.db.exists("Sync Log", {"name": ("in", finished)}))
		self.assertTrue(frappe.db.exists("Sync Log", waiting))
		self.assertTrue(frappe.db.exists("Sync Log", recent))
