"""The ingest API over real HTTP with Frappe token auth: an offline POS uploading its backlog, exactly once."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import frappe
from frappe.tests.utils import FrappeTestCase

from integration_hub.bindings import find_document
from integration_hub.inbound.apply import apply_due_rows
from integration_hub.tests.remotes import POS_ITEMS, make_sale
from integration_hub.tests.test_inbound import make_pos_masters, pos_mapping
from integration_hub.tests.utils import (
	ServedSiteTestCase,
	api_token,
	default_company,
	make_connector,
	make_customer,
	make_item,
)

ENDPOINT = "/api/method/integration_hub.api.ingest.records"
CONNECTOR = "IH Offline Tills"
MAPPING = "IH Till Uploads"


class TestIngestApi(ServedSiteTestCase):
	@classmethod
	def prepare_site(cls):
		make_pos_masters()
		cls.currency = frappe.get_cached_value("Company", default_company(), "default_currency")
		make_connector(CONNECTOR, "https://tills.example.com")
		pos_mapping(MAPPING, "unused", connector=CONNECTOR, trigger="API Ingest", cron_expression="")
		frappe.db.commit()
		frappe.db.delete(
			"Ingest Request", {"user": ("in", ["ih-till-07@example.com", "ih-clerk@example.com"])}
		)
		cls.till = api_token("ih-till-07@example.com", ["Integration Ingest"])
		cls.clerk = api_token("ih-clerk@example.com", ["Accounts User"])

	def upload(self, records: list, key: str, token: str | None = None):
		headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
		if token or self.till:
			headers["Authorization"] = token or self.till
		body = json.dumps({"mapping": MAPPING, "records": records})
		return self.site.post(ENDPOINT, data=body, headers=headers)

	def sales(self, store: str, count: int) -> list[dict]:
		return [make_sale(store, number, currency=self.currency) for number in range(1, count + 1)]

	def test_a_backlog_of_100_sales_sent_three_times_makes_100_invoices(self):
		sales = self.sales("T1", 100)
		sales[41]["lines"][0]["sku"] = "IH-NOT-AN-ITEM"
		started = time.monotonic()
		first = self.upload(sales, "till-07-backlog-1")
		self.assertEqual(first.status_code, 200, first.text)
		results = first.json()["message"]["results"]
		self.assertEqual(len(results), 100)
		self.assertEqual([r["external_id"] for r in results], [s["id"] for s in sales])
		failed = [r for r in results if r["status"] == "failed"]
		self.assertEqual([r["external_id"] for r in failed], ["T1-00042"])
		self.assertIn("IH-NOT-AN-ITEM", failed[0]["message"])
		self.assertEqual({r["status"] for r in results if r not in failed}, {"created"})
		print(f"\n100-record ingest answered in {time.monotonic() - started:.1f} s")

		replay = self.upload(sales, "till-07-backlog-1")
		self.assertEqual((replay.status_code, replay.json()), (200, first.json()))
		again = self.upload(sales, "till-07-backlog-1-retry")
		statuses = [r["status"] for r in again.json()["message"]["results"]]
		self.assertEqual(statuses.count("unchanged"), 99)

		frappe.db.rollback()
		for sale in sales:
			if sale["id"] == "T1-00042":
				self.assertIsNone(find_document(CONNECTOR, "Sales Invoice", sale["id"], "pos_sale"))
				continue
			name = find_document(CONNECTOR, "Sales Invoice", sale["id"], "pos_sale")
			invoice = frappe.db.get_value("Sales Invoice", name, ["docstatus", "grand_total"], as_dict=True)
			self.assertEqual(
				(invoice.docstatus, Decimal(str(invoice.grand_total))), (1, Decimal(sale["grand_total"]))
			)
		self.assertEqual(
			frappe.db.count("Integration Binding", {"connector": CONNECTOR, "external_id": ("like", "T1-%")}),
			99,
		)

	def test_the_same_key_with_another_body_is_refused(self):
		self.assertEqual(self.upload(self.sales("T2", 2), "till-07-conflict").status_code, 200)
		clash = self.upload(self.sales("T3", 2), "till-07-conflict")
		self.assertEqual(clash.status_code, 409)
		self.assertIn("different batch", clash.json()["message"]["error"])

	def test_who_may_ingest(self):
		sales = self.sales("T4", 1)
		self.assertEqual(self.upload(sales, "clerk-1", token=self.clerk).status_code, 403)
		anonymous = self.site.post(
			ENDPOINT,
			data=json.dumps({"mapping": MAPPING, "records": sales}),
			headers={"Idempotency-Key": "guest-1", "Content-Type": "application/json"},
		)
		self.assertIn(anonymous.status_code, (401, 403))
		frappe.db.rollback()
		self.assertIsNone(find_document(CONNECTOR, "Sales Invoice", "T4-00001", "pos_sale"))

	def test_bad_batches_get_a_clear_4xx(self):
		no_key = self.site.post(
			ENDPOINT,
			data=json.dumps({"mapping": MAPPING, "records": self.sales("T5", 1)}),
			headers={"Authorization": self.till, "Content-Type": "application/json"},
		)
		self.assertEqual(no_key.status_code, 400)
		self.assertIn("Idempotency-Key", no_key.json()["message"]["error"])
		self.assertEqual(self.upload([], "till-07-empty").status_code, 422)
		self.assertEqual(self.upload(["not a record"], "till-07-string").status_code, 422)

	def test_a_large_batch_is_accepted_with_a_status_address_and_applied_by_workers(self):
		sales = self.sales("T6", 120)
		answer = self.upload(sales, "till-07-large")
		self.assertEqual(answer.status_code, 202, answer.text)
		status_url = answer.json()["message"]["status_url"]
		status = self.site.get(status_url, headers={"Authorization": self.till}).json()["message"]
		self.assertEqual((status["status"], status["waiting"]), ("Processing", 120))
		frappe.db.rollback()
		apply_due_rows(MAPPING)
		frappe.db.commit()
		done = self.site.get(status_url, headers={"Authorization": self.till}).json()["message"]
		self.assertEqual(done["status"], "Done")
		self.assertEqual([r["status"] for r in done["results"]], ["created"] * 120)
