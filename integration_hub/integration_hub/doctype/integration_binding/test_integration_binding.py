# Copyright (c) 2026, Integration Hub Contributors and contributors
# See license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from integration_hub.mappings import clear_outbound_index
from integration_hub.tests.utils import make_connector, make_customer


def binding(connector: str, name: str, external_id: str, remote_object_type: str = ""):
	return frappe.get_doc(
		{
			"doctype": "Integration Binding",
			"connector": connector,
			"reference_doctype": "Customer",
			"reference_name": name,
			"external_id": external_id,
			"remote_object_type": remote_object_type,
		}
	)


class TestIntegrationBinding(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.connector = make_connector("IH Test Binding Conn", "https://api.example.com")
		cls.customer_a = make_customer("IH Binding Customer A")
		cls.customer_b = make_customer("IH Binding Customer B")
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_outbound_index()

	def test_created_through_orm(self):
		doc = binding(self.connector, self.customer_a, "EXT-1").insert(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("Integration Binding", doc.name, "external_id"), "EXT-1")

	def test_database_refuses_second_document_for_an_external_id(self):
		binding(self.connector, self.customer_a, "EXT-2").insert(ignore_permissions=True)
		duplicate = binding(self.connector, self.customer_b, "EXT-2")
		duplicate.name = frappe.generate_hash(length=10)
		with self.assertRaises(frappe.UniqueValidationError):
			duplicate.db_insert()

	def test_database_refuses_raw_sql_duplicate(self):
		binding(self.connector, self.customer_a, "EXT-3").insert(ignore_permissions=True)
		with self.assertRaises(Exception) as raised:
			frappe.db.sql(
				"""insert into `tabIntegration Binding`
				(name, connector, reference_doctype, reference_name, external_id, remote_object_type, creation, modified)
				values (%s, %s, 'Customer', %s, 'EXT-3', '', now(), now())""",
				(frappe.generate_hash(length=10), self.connector, self.customer_b),
			)
		self.assertTrue(frappe.db.is_unique_key_violation(raised.exception), raised.exception)

	def test_database_refuses_second_external_id_for_a_document(self):
		binding(self.connector, self.customer_a, "EXT-4", "contact").insert(ignore_permissions=True)
		duplicate = binding(self.connector, self.customer_a, "EXT-5", "contact")
		duplicate.name = frappe.generate_hash(length=10)
		with self.assertRaises(frappe.UniqueValidationError):
			duplicate.db_insert()

	def test_remote_object_type_separates_bindings_of_one_document(self):
		binding(self.connector, self.customer_b, "INV-9", "invoice").insert(ignore_permissions=True)
		journal = binding(self.connector, self.customer_b, "JRN-9", "journal").insert(ignore_permissions=True)
		self.assertTrue(journal.name)
