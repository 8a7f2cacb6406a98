"""Issue #11, Frappe side: secrets stay out of reprs, Error Logs and stored bodies; a mapping exports only
what the user who saves it may read; request paths are percent-encoded."""

from __future__ import annotations

import json
from urllib.parse import quote

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_field
from frappe.tests.utils import FrappeTestCase

from integration_hub.api.mapping import load_template, preview
from integration_hub.connectors import clear_connector_clients, get_connector
from integration_hub.integration_hub.doctype.connector.test_connector import make_user
from integration_hub.tests.utils import make_connector, make_customer

SECRET = "sk-live-7c1e9b3a-do-not-log"
RESTRICTED_FIELD = "ih_internal_rating"


class TestSecretsStayHidden(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def test_connector_runtime_repr_shows_no_secret(self):
		name = make_connector(
			"IH Security Repr", "https://api.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)
		clear_connector_clients(name)
		runtime = get_connector(name)
		self.assertIn(SECRET, runtime.secrets)
		self.assertNotIn(SECRET, repr(runtime))
		self.assertNotIn(SECRET, str(runtime.rest_config))

	def test_stored_response_bodies_are_masked_by_key(self):
		name = make_connector("IH Security Body", "https://api.example.com")
		body = json.dumps({"id": "c-1", "access_token": "at-123", "auth": {"refresh_token": "rt-456"}})
		stored = get_connector(name).redact(body)
		self.assertNotIn("at-123", stored)
		self.assertNotIn("rt-456", stored)
		self.assertIn('"c-1"', stored)

	def test_preview_turns_a_request_building_error_into_a_clear_message(self):
		name = make_connector(
			"IH Security Preview",
			"https://api.example.com",
			auth_type="Bearer Token",
			bearer_token=SECRET,
			headers=[{"header_name": "X-Tenant", "header_value": "acme"}],
		)
		header_row = frappe.get_doc("Connector", name).headers[0].name
		frappe.db.set_value("Connector Header", header_row, "header_value", " leading-space")
		frappe.clear_document_cache("Connector", name)
		clear_connector_clients(name)
		mapping = frappe.get_doc(
			{
				"doctype": "Mapping",
				**load_template("customer_to_crm")["mapping"],
				"mapping_name": "IH Security Preview Mapping",
				"connector": name,
			}
		).insert(ignore_permissions=True)
		errors_before = frappe.db.count("Error Log")
		with self.assertRaisesRegex(frappe.ValidationError, "cannot be built") as caught:
			preview(mapping.name, make_customer(), "on_update")
		self.assertNotIn(SECRET, str(caught.exception))
		self.assertEqual(frappe.db.count("Error Log"), errors_before)

	def test_preview_percent_encodes_values_in_the_path(self):
		name = make_connector("IH Security Path", "https://crm.example.com")
		mapping = frappe.get_doc(
			{
				"doctype": "Mapping",
				**load_template("customer_to_crm")["mapping"],
				"mapping_name": "IH Security Path Mapping",
				"connector": name,
			}
		).insert(ignore_permissions=True)
		make_customer("IH Evil/../BIGCORP-LTD")
		docname = frappe.db.get_value("Customer", {"customer_name": "IH Evil/../BIGCORP-LTD"})
		request = preview(mapping.name, docname, "on_update")
		self.assertEqual(
			request["url"], "https://crm.example.com/contacts/external/" + quote(docname, safe="")
		)
		self.assertNotIn("/..", request["url"])


class TestConnectorAddresses(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()

	def test_ambiguous_addresses_are_refused(self):
		smuggled = "http://127.0.0.1:8080\\@8.8.8.8:8080/soap"
		with self.assertRaisesRegex(frappe.ValidationError, "backslash"):
			make_connector("IH Security Smuggled", smuggled)
		with self.assertRaisesRegex(frappe.ValidationError, "backslash"):
			make_connector(
				"IH Security SOAP Override",
				"https://soap.example.com",
				protocol="SOAP",
				wsdl_source="URL",
				wsdl_url="https://soap.example.com/service?wsdl",
				soap_endpoint_override=smuggled,
			)
		with self.assertRaisesRegex(frappe.ValidationError, "must not carry credentials"):
			make_connector("IH Security Userinfo", "https://@api.example.com")


class TestMappingSourceAccess(FrappeTestCase):
	"""A field at permission level 2 that no role may read (ERPNext gives Sales User level 1 on Customer); a user who can read Customer otherwise."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		create_custom_field(
			"Customer",
			{
				"fieldname": RESTRICTED_FIELD,
				"label": "IH Internal Rating",
				"fieldtype": "Data",
				"permlevel": 2,
				"insert_after": "customer_name",
			},
		)
		cls.connector = make_connector("IH Security Access", "https://crm.example.com")
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.delete_doc("Custom Field", f"Customer-{RESTRICTED_FIELD}", force=True, ignore_permissions=True)
		frappe.clear_cache(doctype="Customer")
		frappe.db.commit()
		super().tearDownClass()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def customer_mapping(self, name: str, **values):
		return frappe.get_doc(
			{
				"doctype": "Mapping",
				"mapping_name": name,
				"direction": "Outbound",
				"connector": self.connector,
				"source_doctype": "Customer",
				"enabled": 1,
				"events": [
					{"event": "on_update", "http_method": "POST", "path": "/contacts", "send_body": 1}
				],
				"fields": [{"target": "name", "source": "customer_name", "source_type": "Field"}],
				**values,
			}
		)

	def test_user_who_cannot_read_the_doctype_cannot_save_a_mapping_of_it(self):
		frappe.set_user(make_user("ih-mapper-noread@example.com", ["Integration Manager"]))
		with self.assertRaisesRegex(frappe.PermissionError, "cannot save a mapping"):
			self.customer_mapping("IH Security No Read").insert()

	def test_user_may_map_fields_at_their_permission_level(self):
		frappe.set_user(make_user("ih-mapper-sales@example.com", ["Integration Manager", "Sales User"]))
		self.assertTrue(self.customer_mapping("IH Security Level 0").insert().name)

	def test_field_above_the_users_permission_level_is_refused(self):
		frappe.set_user(make_user("ih-mapper-sales@example.com", ["Integration Manager", "Sales User"]))
		fields = [{"target": "rating", "source": RESTRICTED_FIELD, "source_type": "Field"}]
		with self.assertRaisesRegex(frappe.PermissionError, RESTRICTED_FIELD):
			self.customer_mapping("IH Security Level 1", fields=fields).insert()

	def test_template_that_could_read_a_restricted_field_is_refused(self):
		frappe.set_user(make_user("ih-mapper-sales@example.com", ["Integration Manager", "Sales User"]))
		with self.assertRaisesRegex(frappe.PermissionError, RESTRICTED_FIELD):
			self.customer_mapping(
				"IH Security Template", fields=[], body_template='{"name": {{ doc.customer_name|tojson }}}'
			).insert()

	def test_enabling_a_disabled_mapping_is_checked(self):
		frappe.set_user(make_user("ih-mapper-sales@example.com", ["Integration Manager", "Sales User"]))
		fields = [{"target": "rating", "source": RESTRICTED_FIELD, "source_type": "Field"}]
		mapping = self.customer_mapping("IH Security Disabled", enabled=0, fields=fields).insert()
		mapping.enabled = 1
		with self.assertRaises(frappe.PermissionError):
			mapping.save()


class TestInboundTargetAccess(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def inbound_mapping(self, name: str):
		return frappe.get_doc(
			{
				"doctype": "Mapping",
				"mapping_name": name,
				"direction": "Inbound",
				"connector": make_connector("IH Security Inbound", "https://crm.example.com"),
				"enabled": 1,
				"trigger": "API Ingest",
				"target_doctype": "Sales Invoice",
				"submit_on_create": 1,
				"external_id_path": "id",
				"fields": [{"target": "customer", "source": "customer", "source_type": "Path"}],
			}
		)

	def test_a_user_who_may_not_submit_invoices_cannot_enable_a_mapping_that_does(self):
		frappe.set_user(make_user("ih-inbound-author@example.com", ["Integration Manager"]))
		with self.assertRaisesRegex(frappe.PermissionError, "cannot enable a mapping that writes it"):
			self.inbound_mapping("IH Security Inbound No Rights").insert()

	def test_an_accounts_user_may(self):
		frappe.set_user(
			make_user("ih-inbound-accounts@example.com", ["Integration Manager", "Accounts User"])
		)
		self.assertTrue(self.inbound_mapping("IH Security Inbound Accounts").insert().name)
