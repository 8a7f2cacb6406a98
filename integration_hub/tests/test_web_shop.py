"""A web shop end to end: order in (its new customer created on the way) → invoice → payment event → Paid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import frappe
from frappe.tests.utils import FrappeTestCase

from integration_hub.bindings import find_document, save_binding
from integration_hub.inbound.apply import apply_due_rows
from integration_hub.tests.utils import (
	ServedSiteTestCase,
	default_company,
	make_connector,
	make_item,
	mapping_from_template,
	tax_account,
)

SHOP = "IH Web Shop"
SECRET = "shpss_ih_web_shop_signing_secret_41"
ENDPOINT = "/api/method/integration_hub.api.webhook.receive?connector=IH%20Web%20Shop"
PRODUCTS = {"prod_101": "IH-SHOP-A", "prod_202": "IH-SHOP-B"}


def shop_headers(body: bytes) -> dict:
	digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
	return {"X-Shop-Hmac-Sha256": digest, "Content-Type": "application/json"}


class TestWebShopFlow(ServedSiteTestCase):
	@classmethod
	def prepare_site(cls):
		company = default_company()
		cls.currency = frappe.get_cached_value("Company", company, "default_currency")
		make_connector(
			SHOP,
			"https://shop.example.com",
			signature_scheme="HMAC Header",
			webhook_secret=SECRET,
			signature_header="X-Shop-Hmac-Sha256",
			signature_encoding="base64",
			signature_algorithm="sha256",
		)
		for product, item in PRODUCTS.items():
			save_binding(SHOP, "Item", make_item(item), product)
		mapping_from_template(
			"remote_list_to_customer",
			SHOP,
			"IH Shop Customers",
			enabled=1,
			trigger="Webhook",
			webhook_event_type="customer.created",
			records_path="data.object",
		)
		mapping_from_template(
			"web_shop_orders_to_sales_invoice",
			SHOP,
			"IH Shop Orders",
			enabled=1,
			fields={"company": {"source": company}, "taxes[].account_head": {"source": tax_account(company)}},
			links={"customer": {"create_with": "IH Shop Customers"}},
		)
		mapping_from_template(
			"payment_events_to_payment_entry",
			SHOP,
			"IH Shop Payments",
			enabled=1,
			fields={"invoice": {"source": "metadata.order_id"}},
			links={"invoice": {"match_by": "Binding"}},
		)

	def send(self, event: dict) -> None:
		body = json.dumps(event).encode()
		answer = self.site.post(ENDPOINT, data=body, headers=shop_headers(body))
		self.assertEqual(answer.status_code, 200, answer.text)
		frappe.db.rollback()
		for mapping in ("IH Shop Orders", "IH Shop Payments"):
			apply_due_rows(mapping)

	def test_order_then_payment_leaves_a_paid_invoice_for_a_customer_created_on_the_way(self):
		run = str(int(time.time()))
		order_id, buyer = f"ord_{run}", f"cus_{run}"
		self.send(
			{
				"id": f"evt_order_{run}",
				"type": "order.created",
				"data": {
					"object": {
						"id": order_id,
						"created_at": "2026-11-30T18:20:00+01:00",
						"currency": self.currency.lower(),
						"customer": {
							"id": buyer,
							"name": f"IH Shop Buyer {run}",
							"email": f"{run}@example.com",
							"type": "individual",
						},
						"lines": [
							{"product_id": "prod_101", "quantity": 2, "price": 19.99},
							{"product_id": "prod_202", "quantity": 1, "price": 5.5},
						],
						"tax_lines": [{"title": "VAT 10%", "amount": 4.55}],
					}
				},
			}
		)
		invoice = find_document(SHOP, "Sales Invoice", order_id, "order")
		self.assertTrue(
			invoice, frappe.get_all("Sync Log", filters={"connector": SHOP}, fields=["status", "error"])
		)
		customer = find_document(SHOP, "Customer", buyer, "contact")
		state = frappe.db.get_value(
			"Sales Invoice", invoice, ["customer", "grand_total", "docstatus", "status"], as_dict=True
		)
		self.assertEqual((state.customer, state.grand_total, state.docstatus), (customer, 50.03, 1))
		self.assertEqual(frappe.db.get_value("Customer", customer, "customer_name"), f"IH Shop Buyer {run}")
		self.assertEqual(
			sorted(frappe.get_all("Sales Invoice Item", filters={"parent": invoice}, pluck="item_code")),
			sorted(PRODUCTS.values()),
		)

		payment = {
			"id": f"evt_pay_{run}",
			"type": "payment_intent.succeeded",
			"data": {
				"object": {
					"id": f"pi_{run}",
					"amount_received": 5003,
					"currency": self.currency.lower(),
					"created": int(time.time()),
					"metadata": {"order_id": order_id},
				}
			},
		}
		self.send(payment)
		self.assertEqual(frappe.db.get_value("Sales Invoice", invoice, "status"), "Paid")
		self.send(payment)
		paid_by = frappe.get_all(
			"Payment Entry Reference", filters={"reference_name": invoice, "docstatus": 1}, pluck="parent"
		)
		self.assertEqual(len(paid_by), 1)
