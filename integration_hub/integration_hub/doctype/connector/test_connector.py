# Copyright (c) 2026, Integration Hub Contributors and contributors
# See license.txt

import json
from contextlib import contextmanager

import frappe
from frappe.api.v1 import read_doc
from frappe.tests.utils import FrappeTestCase

from integration_hub.api.connector import test_connection
from integration_hub.connectors import clear_connector_clients
from integration_hub.tests.utils import RecordingServer, free_port, make_connector

SECRET = "s3cr3t-token-value-9f8e7d"


def make_user(email: str, roles: list[str]) -> str:
	"""Create (or reset) a user with exactly ``roles``; call it as Administrator."""
	if not frappe.db.exists("User", email):
		user = frappe.get_doc(
			{"doctype": "User", "email": email, "first_name": email.split("@")[0], "send_welcome_email": 0}
		).insert(ignore_permissions=True)
	else:
		user = frappe.get_doc("User", email)
	user.set("roles", [])
	user.add_roles(*roles)
	frappe.db.commit()
	return email


@contextmanager
def role_checks_enforced():
	"""frappe.only_for() waves every role check through while tests run; enforce it as in production."""
	in_test = frappe.flags.in_test
	frappe.flags.in_test = False
	try:
		yield
	finally:
		frappe.flags.in_test = in_test


class TestConnector(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")

	def test_created_through_orm_with_secret_encrypted(self):
		name = make_connector(
			"IH Test ORM", "https://api.example.com/v1", auth_type="Bearer Token", bearer_token=SECRET
		)
		doc = frappe.get_doc("Connector", name)
		self.assertEqual(doc.get_password("bearer_token"), SECRET)
		stored = frappe.db.get_value("Connector", name, "bearer_token")
		self.assertNotEqual(stored, SECRET)
		self.assertNotIn(SECRET, json.dumps(doc.as_dict(), default=str))

	def test_invalid_base_url_rejected(self):
		for url, message in [
			("ftp://files.example.com", "is not a valid address"),
			("not a url", "is not a valid address"),
			("https://user:pw@api.example.com", "must not carry credentials"),
			("http://169.254.169.254/latest", "may never be called"),
		]:
			with self.subTest(url=url):
				with self.assertRaisesRegex(frappe.ValidationError, message):
					make_connector("IH Test Bad URL", url)

	def test_soap_connector_needs_wsdl(self):
		with self.assertRaisesRegex(frappe.ValidationError, "needs a WSDL"):
			frappe.get_doc(
				{
					"doctype": "Connector",
					"connector_name": "IH Test SOAP",
					"protocol": "SOAP",
					"wsdl_source": "Attached File",
				}
			).insert()

	def test_auth_requires_its_secret(self):
		with self.assertRaisesRegex(frappe.ValidationError, "Bearer Token"):
			make_connector("IH Test Auth", "https://api.example.com", auth_type="Bearer Token")

	def test_user_without_role_cannot_read_secrets(self):
		name = make_connector(
			"IH Test Perm", "https://api.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)
		frappe.db.commit()
		frappe.set_user(make_user("ih-plain-user@example.com", ["Accounts User"]))
		with self.assertRaises(frappe.PermissionError), role_checks_enforced():
			frappe.client.get_password("Connector", name, "bearer_token")
		with self.assertRaises(frappe.PermissionError):
			read_doc("Connector", name)
		with self.assertRaises(frappe.PermissionError):
			test_connection(name)

	def test_integration_manager_reads_connector_but_never_the_secret_value(self):
		name = make_connector(
			"IH Test Perm IM", "https://api.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)
		frappe.set_user(make_user("ih-manager@example.com", ["Integration Manager"]))
		doc = read_doc("Connector", name)
		self.assertNotIn(SECRET, json.dumps(doc, default=str))

	def test_test_connection_reports_success_and_failure_without_secret(self):
		def check_token(request):
			if request.headers.get("Authorization") == f"Bearer {SECRET}":
				return 200, {}, {"status": "up"}
			return 401, {}, {"error": "invalid token"}

		with RecordingServer(responder=check_token) as server:
			good = make_connector(
				"IH Test Conn Good",
				server.url,
				auth_type="Bearer Token",
				bearer_token=SECRET,
				health_check_path="/health",
			)
			result = test_connection(good)
			self.assertTrue(result["ok"], result)
			self.assertIn("HTTP 200", result["message"])
			self.assertEqual(server.requests[-1].path, "/health")

			bad = make_connector(
				"IH Test Conn Bad", server.url, auth_type="Bearer Token", bearer_token="wrong-" + SECRET
			)
			result = test_connection(bad)
			self.assertFalse(result["ok"])
			self.assertIn("401", result["message"])
			self.assertIn("invalid token", result["message"])

		for text in (json.dumps(result), json.dumps(frappe.get_all("Error Log", fields=["*"]), default=str)):
			self.assertNotIn(SECRET, text)
		logs = frappe.get_all("Sync Log", fields=["request", "response", "error"])
		self.assertNotIn(SECRET, json.dumps(logs, default=str))
		self.assertNotIn(SECRET, frappe.db.get_value("Connector", bad, "last_error") or "")

	def test_unreachable_remote_gives_readable_error(self):
		name = make_connector("IH Test Conn Down", f"http://127.0.0.1:{free_port()}")
		result = test_connection(name)
		self.assertFalse(result["ok"])
		self.assertTrue(result["message"])

	def test_metadata_address_refused(self):
		name = make_connector("IH Test Conn Meta", "http://metadata.invalid")
		frappe.db.set_value("Connector", name, "base_url", "http://169.254.169.254")
		frappe.clear_document_cache("Connector", name)
		clear_connector_clients(name)
		result = test_connection(name)
		self.assertFalse(result["ok"])
		self.assertIn("169.254.169.254", result["message"])
