"""Attendance punches from a device server → Employee Checkins: right employee, type and time, once each."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_datetime, get_system_timezone

from integration_hub.inbound.pull import run_pull
from integration_hub.tests.remotes import AttendanceServer
from integration_hub.tests.utils import default_company, make_connector, mapping_from_template

CONNECTOR = "IH Attendance Server"
MAPPING = "IH Punches"
DEVICE_ZONE = "Asia/Dubai"


def make_employee(first_name: str, device_id: str) -> str:
	name = frappe.db.get_value("Employee", {"attendance_device_id": device_id})
	if name:
		return name
	return (
		frappe.get_doc(
			{
				"doctype": "Employee",
				"first_name": first_name,
				"gender": frappe.get_all("Gender", limit=1, pluck="name")[0],
				"date_of_birth": "1990-01-01",
				"date_of_joining": "2024-01-01",
				"company": default_company(),
				"attendance_device_id": device_id,
				"status": "Active",
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


def site_time(device_time: str) -> str:
	"""A naive device time read in the device's zone, as the site's naive local time."""
	moment = get_datetime(device_time).replace(tzinfo=ZoneInfo(DEVICE_ZONE))
	return str(moment.astimezone(ZoneInfo(get_system_timezone())).replace(tzinfo=None))


class TestAttendancePull(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		if "hrms" not in frappe.get_installed_apps():
			raise cls.skipTest(cls, "HRMS is not installed")
		cls.asha = make_employee("Asha", "IH-D-1001")
		cls.ravi = make_employee("Ravi", "IH-D-1002")
		frappe.db.commit()

	def setUp(self):
		frappe.db.delete("Employee Checkin", {"employee": ("in", [self.asha, self.ravi])})
		self.device = AttendanceServer()
		make_connector(CONNECTOR, self.device.url, time_zone=DEVICE_ZONE)
		mapping_from_template("attendance_punches_to_employee_checkin", CONNECTOR, MAPPING, page_size=4)
		frappe.db.commit()

	def tearDown(self):
		self.device.stop()

	def checkins(self) -> list:
		return frappe.get_all(
			"Employee Checkin",
			filters={"employee": ("in", [self.asha, self.ravi])},
			fields=["employee", "log_type", "time", "device_id"],
			order_by="time asc, employee asc",
		)

	def test_punches_become_checkins_once_with_employee_type_and_time(self):
		self.device.add(1, "IH-D-1001", "2026-11-30 09:00:03", "0")
		self.device.add(2, "IH-D-1002", "2026-11-30 09:02:41", "0")
		self.device.add(3, "IH-D-1001", "2026-11-30 09:00:03", "0")
		self.device.add(4, "IH-D-1001", "2026-11-30 18:05:00", "1")
		self.device.add(5, "IH-D-9999", "2026-11-30 18:06:00", "1")
		self.device.add(6, "IH-D-1002", "2026-11-30 18:30:12", "1")

		counts = run_pull(MAPPING)

		self.assertEqual((counts.fetched, counts.created, counts.failed), (6, 4, 1))
		self.assertEqual(
			[(c.employee, c.log_type, str(c.time)) for c in self.checkins()],
			sorted(
				[
					(self.asha, "IN", site_time("2026-11-30 09:00:03")),
					(self.ravi, "IN", site_time("2026-11-30 09:02:41")),
					(self.asha, "OUT", site_time("2026-11-30 18:05:00")),
					(self.ravi, "OUT", site_time("2026-11-30 18:30:12")),
				],
				key=lambda c: (c[2], c[0]),
			),
		)
		double_tap = frappe.db.get_value(
			"Sync Log", {"mapping": MAPPING, "external_id": "3"}, ["status", "error"], as_dict=True
		)
		self.assertEqual(double_tap.status, "Skipped")
		self.assertIn("already stored as Employee Checkin", double_tap.error)
		unknown = frappe.db.get_value(
			"Sync Log", {"mapping": MAPPING, "external_id": "5"}, ["status", "error"], as_dict=True
		)
		self.assertEqual(unknown.status, "Dead")
		self.assertIn(
			"Employee 'IH-D-9999' for employee was not found (by attendance_device_id)", unknown.error
		)

		again = run_pull(MAPPING)
		self.assertEqual(again.created + again.failed, 0)
		self.assertEqual(len(self.checkins()), 4)

	def test_a_drf_attendance_api_with_login_tokens_late_uploads_and_naive_times(self):
		"""ZKBio Time-like: JWT login, page numbers until DRF's 404 past the end, a punch uploaded late."""
		self.device.username, self.device.password = "ih-device-reader", "device-pass-7731"
		make_connector(
			CONNECTOR,
			self.device.url,
			time_zone=DEVICE_ZONE,
			auth_type="Login Token",
			login_url="/jwt-api-token-auth/",
			login_token_scheme="JWT",
			username=self.device.username,
			password=self.device.password,
		)
		mapping_from_template("attendance_punches_to_employee_checkin", CONNECTOR, MAPPING, page_size=4)
		frappe.db.commit()
		for number in range(8):
			minute = 10 + number
			self.device.add(
				100 + number,
				"IH-D-1001" if number % 2 else "IH-D-1002",
				f"2026-11-30 08:{minute:02d}:00",
				str(number % 2),
				upload_time=f"2026-11-30 08:{minute:02d}:30",
			)

		first = run_pull(MAPPING)

		self.assertEqual((first.fetched, first.created, first.failed), (8, 8, 0))
		self.assertEqual(frappe.db.get_value("Mapping", MAPPING, "last_pull_status"), "Success")
		past_the_end = [r for r in self.device.server.requests if "page=3" in r.query]
		self.assertTrue(past_the_end, "the pull never asked past the last page, so DRF's 404 was not met")
		self.assertEqual(self.device.logins, 1)

		self.device.expire_tokens()
		late = self.device.add(
			200, "IH-D-1002", "2026-11-30 07:55:00", "0", upload_time="2026-11-30 08:40:00"
		)
		second = run_pull(MAPPING)

		self.assertEqual((second.created, second.failed), (1, 0))
		self.assertEqual(frappe.db.get_value("Mapping", MAPPING, "last_pull_status"), "Success")
		self.assertEqual(self.device.logins, 2)
		since = [r.query for r in self.device.server.requests if "upload_time__gte" in r.query]
		self.assertTrue(since and all("2026-11-30+08%3A" in q for q in since[-1:]), since[-1:])
		times = [str(c.time) for c in self.checkins()]
		self.assertEqual(len(times), 9)
		self.assertEqual(len(set(times)), 9)
		self.assertIn(site_time(late["punch_time"]), times)
		for punch in self.device.punches:
			self.assertIn(site_time(punch["punch_time"]), times)
