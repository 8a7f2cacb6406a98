# Copyright (c) 2026, Integration Hub Contributors and contributors
# See license.txt

import json

import frappe
from frappe.tests.utils import FrappeTestCase

from integration_hub.api.mapping import TEMPLATE_DIR, preview
from integration_hub.mappings import clear_outbound_index, get_outbound_index
from integration_hub.tests.utils import make_connector, make_mapping_from_template, make_sales_invoice

SECRET = "mapping-test-secret-4411"


def outbound_mapping(name: str, connector: str, **values) -> dict:
	return {
		"doctype": "Mapping",
		"mapping_name": name,
		"direction": "Outbound",
		"connector": connector,
		"source_doctype": "Customer",
		"events": [{"event": "on_update", "http_method": "POST", "path": "/contacts"}],
		"fields": [{"source_type": "Field", "source": "customer_name", "target": "name"}],
		**values,
	}


def inbound_mapping(name: str, connector: str, **values) -> dict:
	return {
		"doctype": "Mapping",
		"mapping_name": name,
		"direction": "Inbound",
		"connector": connector,
		"trigger": "Schedule",
		"cron_expression": "*/15 * * * *",
		"endpoint_path": "/orders",
		"target_doctype": "Sales Order",
		"fields": [{"source_type": "Path", "source": "customer.id", "target": "customer"}],
		**values,
	}


class TestMapping(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.connector = make_connector(
			"IH Test Mapping Conn", "https://crm.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_outbound_index()

	def test_outbound_and_inbound_created_through_orm(self):
		out = frappe.get_doc(outbound_mapping("IH Test Out", self.connector)).insert()
		self.assertEqual(out.events[0].event, "on_update")
		inbound = frappe.get_doc(inbound_mapping("IH Test In", self.connector)).insert()
		self.assertEqual(inbound.target_doctype, "Sales Order")

	def test_outbound_index_follows_mapping_changes(self):
		mapping = frappe.get_doc(outbound_mapping("IH Test Index", self.connector)).insert()
		self.assertIn("IH Test Index", get_outbound_index()["Customer"]["on_update"])
		mapping.enabled = 0
		mapping.save()
		self.assertNotIn("IH Test Index", get_outbound_index().get("Customer", {}).get("on_update", []))

	def test_invalid_cron_expression_rejected(self):
		with self.assertRaisesRegex(frappe.ValidationError, "not a valid cron expression"):
			frappe.get_doc(
				inbound_mapping("IH Test Cron", self.connector, cron_expression="every five minutes")
			).insert()

	def test_submit_event_on_non_submittable_doctype_rejected(self):
		for event in ("on_submit", "on_cancel"):
			with self.subTest(event=event):
				doc = outbound_mapping(
					f"IH Test Submit {event}",
					self.connector,
					events=[{"event": event, "http_method": "POST", "path": "/x"}],
				)
				with self.assertRaisesRegex(frappe.ValidationError, "not submittable"):
					frappe.get_doc(doc).insert()

	def test_unknown_source_field_rejected(self):
		doc = outbound_mapping(
			"IH Test Source",
			self.connector,
			fields=[{"source_type": "Field", "source": "no_such_field", "target": "x"}],
		)
		with self.assertRaisesRegex(frappe.ValidationError, "no_such_field"):
			frappe.get_doc(doc).insert()

	def test_unknown_child_source_field_rejected(self):
		doc = outbound_mapping(
			"IH Test Child Source",
			self.connector,
			source_doctype="Sales Invoice",
			events=[{"event": "on_submit", "http_method": "POST", "path": "/x"}],
			fields=[{"source_type": "Path", "source": "items[].no_such_column", "target": "lines[].x"}],
		)
		with self.assertRaisesRegex(frappe.ValidationError, "no_such_column"):
			frappe.get_doc(doc).insert()

	def test_unknown_target_field_rejected(self):
		doc = inbound_mapping(
			"IH Test Target",
			self.connector,
			fields=[{"source_type": "Path", "source": "id", "target": "not_a_field"}],
		)
		with self.assertRaisesRegex(frappe.ValidationError, "not_a_field"):
			frappe.get_doc(doc).insert()

	def test_duplicate_mapping_rejected(self):
		frappe.get_doc(outbound_mapping("IH Test Dup 1", self.connector)).insert()
		with self.assertRaisesRegex(frappe.ValidationError, "already sends"):
			frappe.get_doc(outbound_mapping("IH Test Dup 2", self.connector)).insert()
		disabled = frappe.get_doc(outbound_mapping("IH Test Dup 3", self.connector, enabled=0)).insert()
		self.assertFalse(disabled.enabled)

	def test_bad_condition_and_body_template_rejected(self):
		for name, values in [
			("IH Test Cond", {"condition": "doc.customer_name =="}),
			("IH Test Tmpl", {"body_template": '{"name": {{ doc.customer_name }'}),
		]:
			with self.subTest(name=name):
				with self.assertRaisesRegex(frappe.ValidationError, "(?i)syntax|unexpected|expected"):
					frappe.get_doc(outbound_mapping(name, self.connector, **values)).insert()

	def test_every_template_creates_a_valid_mapping(self):
		templates = sorted(path.stem for path in TEMPLATE_DIR.glob("*.json"))
		self.assertGreaterEqual(len(templates), 4)
		for index, template in enumerate(templates):
			connector = make_connector(f"IH Test Template Conn {index}", "https://remote.example.com")
			name = make_mapping_from_template(template, connector)
			self.assertTrue(frappe.db.exists("Mapping", name), template)

	def test_preview_shows_mapped_request_with_secrets_redacted(self):
		connector = make_connector(
			"IH Test Preview Conn", "https://books.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)
		mapping = make_mapping_from_template("sales_invoice_to_accounting", connector)
		invoice = make_sales_invoice(items=(("IH-TEST-ITEM", 3, 20.0),), tax_rate=10)
		request = preview(mapping, invoice.name, "on_submit")
		text = json.dumps(request, default=str)
		self.assertNotIn(SECRET, text)
		self.assertEqual(request["method"], "POST")
		self.assertTrue(request["url"].endswith("/invoices"))
		body = request["body"] if isinstance(request["body"], dict) else json.loads(request["body"])
		self.assertEqual(body["invoice_number"], invoice.name)
		self.assertEqual(body["lines"][0]["quantity"], 3.0)
		self.assertEqual(body["totals"]["grand_minor"], 6600)
