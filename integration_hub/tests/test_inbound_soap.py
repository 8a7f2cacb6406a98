"""A legacy SOAP system as the source of an inbound mapping: a spyne service on 127.0.0.1 → Customers."""

from __future__ import annotations

import logging
import threading

import frappe
from frappe.tests.utils import FrappeTestCase
from spyne import Application, Array, ComplexModel, Integer, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from werkzeug.serving import make_server

from integration_hub.bindings import find_document
from integration_hub.inbound.pull import run_pull
from integration_hub.tests.utils import QuietRequestHandler, make_connector, mapping_from_template

TNS = "urn:integration-hub:test:ledger"
CONNECTOR = "IH Legacy Ledger"
MAPPING = "IH Ledger Customers"
CUSTOMERS = [
	{
		"id": f"LEDGER-{n:03d}",
		"name": f"IH Ledger Customer {n:03d}",
		"email": f"ledger{n}@example.com",
		"type": "company",
	}
	for n in range(1, 24)
]


class LedgerCustomer(ComplexModel):
	__namespace__ = TNS
	id = Unicode
	name = Unicode
	email = Unicode
	type = Unicode


class CustomerPage(ComplexModel):
	__namespace__ = TNS
	total = Integer
	customers = Array(LedgerCustomer)


class LedgerService(ServiceBase):
	@rpc(Integer, Integer, _returns=CustomerPage)
	def ListCustomers(ctx, page, page_size):
		start = (page - 1) * page_size
		chunk = CUSTOMERS[start : start + page_size]
		return CustomerPage(total=len(CUSTOMERS), customers=[LedgerCustomer(**row) for row in chunk])


class LedgerServer:
	"""The SOAP service on 127.0.0.1, stopped by the test that started it."""

	def __init__(self):
		logging.getLogger("spyne").setLevel(logging.CRITICAL)
		application = Application(
			[LedgerService],
			tns=TNS,
			name="Ledger",
			in_protocol=Soap11(validator="lxml"),
			out_protocol=Soap11(),
		)
		self.httpd = make_server(
			"127.0.0.1", 0, WsgiApplication(application), threaded=True, request_handler=QuietRequestHandler
		)
		self.thread = threading.Thread(
			target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
		)
		self.thread.start()
		self.wsdl_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ledger?wsdl"

	def stop(self):
		self.httpd.shutdown()
		self.httpd.server_close()


class TestSoapSource(FrappeTestCase):
	def setUp(self):
		self.ledger = LedgerServer()
		frappe.db.delete("Customer", {"customer_name": ("like", "IH Ledger Customer %")})
		make_connector(CONNECTOR, "", protocol="SOAP", wsdl_source="URL", wsdl_url=self.ledger.wsdl_url)
		mapping_from_template(
			"remote_list_to_customer",
			CONNECTOR,
			MAPPING,
			soap_operation="ListCustomers",
			endpoint_path="",
			records_path="customers.LedgerCustomer",
			pagination_style="Page",
			page_param="page",
			size_param="page_size",
			page_size=10,
			total_path="total",
			since_param="",
			cursor_field="",
		)
		frappe.db.commit()

	def tearDown(self):
		self.ledger.stop()

	def test_customers_listed_by_a_soap_operation_become_customers_once(self):
		counts = run_pull(MAPPING)

		self.assertEqual((counts.fetched, counts.created, counts.failed, counts.pages), (23, 23, 0, 3))
		for row in CUSTOMERS:
			name = find_document(CONNECTOR, "Customer", row["id"], "contact")
			self.assertTrue(name, row["id"])
			self.assertEqual(
				frappe.db.get_value("Customer", name, ["customer_name", "customer_type"]),
				(row["name"], "Company"),
			)
		again = run_pull(MAPPING)
		self.assertEqual((again.fetched, again.created, again.unchanged), (23, 0, 23))
