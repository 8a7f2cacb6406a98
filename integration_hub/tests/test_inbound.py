"""Inbound pull end to end: a POS server on 127.0.0.1 → paid, submitted Sales Invoices, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from integration_hub.api.mapping import pull_now, reset_cursor
from integration_hub.api.sync_log import retry
from integration_hub.bindings import find_document
from integration_hub.inbound.apply import apply_due_rows
from integration_hub.inbound.pull import pull_is_due, pull_lock_name, run_pull, schedule_pulls
from integration_hub.integration_hub.doctype.connector.test_connector import make_user, role_checks_enforced
from integration_hub.tests.remotes import GST_RATES, POS_ITEMS, PosServer, make_sale
from integration_hub.tests.utils import (
	default_company,
	make_connector,
	make_customer,
	make_item,
	mapping_from_template,
	run_site_function,
)

CONNECTOR = "IH POS Server"
WALK_IN = "IH Walk-in Customer"
PER_STORE = int(os.environ.get("IH_POS_SALES_PER_STORE", "170"))
STYLES = {
	"page": {"endpoint_path": "/stores/{store}/sales", "pagination_style": "Page"},
	"cursor": {
		"endpoint_path": "/stores/{store}/sales-by-cursor",
		"pagination_style": "Cursor",
		"cursor_param": "cursor",
		"size_param": "limit",
		"next_cursor_path": "next_cursor",
	},
	"link": {
		"endpoint_path": "/stores/{store}/sales-by-link",
		"pagination_style": "Link Header",
		"size_param": "limit",
	},
}


def gst_account(company: str, rate: int) -> str:
	abbr = frappe.get_cached_value("Company", company, "abbr")
	name = f"Output GST {rate}% - {abbr}"
	if not frappe.db.exists("Account", name):
		parent = frappe.db.get_value(
			"Account", {"company": company, "account_name": "Duties and Taxes", "is_group": 1}
		) or frappe.db.get_value("Account", {"company": company, "root_type": "Liability", "is_group": 1})
		frappe.get_doc(
			{
				"doctype": "Account",
				"account_name": f"Output GST {rate}%",
				"company": company,
				"parent_account": parent,
				"account_type": "Tax",
				"root_type": "Liability",
			}
		).insert(ignore_permissions=True)
	return name


def ensure_cash_account(company: str) -> None:
	mode = frappe.get_doc("Mode of Payment", "Cash")
	if not any(row.company == company for row in mode.accounts):
		cash = frappe.get_cached_value("Company", company, "default_cash_account") or frappe.db.get_value(
			"Account", {"company": company, "account_type": "Cash", "is_group": 0}
		)
		mode.append("accounts", {"company": company, "default_account": cash})
		mode.save(ignore_permissions=True)


def pos_mapping(name: str, store: str, style: str = "page", connector: str = CONNECTOR, **overrides) -> str:
	"""The POS template, filled in as an administrator would for this site's company and accounts."""
	company = default_company()
	accounts = {str(rate): gst_account(company, rate) for rate in GST_RATES}
	values = {
		key: value.format(store=store) if isinstance(value, str) else value
		for key, value in STYLES[style].items()
	}
	return mapping_from_template(
		"pos_sales_to_sales_invoice",
		connector,
		name,
		fields={
			"company": {"source": company},
			"taxes[].account_head": {"argument": json.dumps(accounts)},
		},
		links={"customer": {"default_value": WALK_IN}},
		**{"page_size": 50, **values, **overrides},
	)


def company_pos_server() -> PosServer:
	return PosServer(currency=frappe.get_cached_value("Company", default_company(), "default_currency"))


def invoice_for(sale_id: str) -> str | None:
	return find_document(CONNECTOR, "Sales Invoice", sale_id, "pos_sale")


class TestPosPull(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		company = default_company()
		for code in POS_ITEMS:
			make_item(code)
		ensure_cash_account(company)
		make_customer(WALK_IN)
		frappe.db.commit()

	def setUp(self):
		self.pos = company_pos_server()
		make_connector(CONNECTOR, self.pos.url, max_attempts=3)
		frappe.db.commit()
		self.started = now_datetime()

	def tearDown(self):
		self.pos.stop()

	def assert_invoice_matches(self, sale: dict) -> None:
		name = invoice_for(sale["id"])
		self.assertTrue(name, f"sale {sale['id']} has no invoice")
		invoice = frappe.db.get_value(
			"Sales Invoice",
			name,
			[
				"docstatus",
				"grand_total",
				"total_taxes_and_charges",
				"net_total",
				"status",
				"outstanding_amount",
			],
			as_dict=True,
		)
		self.assertEqual(invoice.docstatus, 1, sale["id"])
		self.assertEqual(Decimal(str(invoice.grand_total)), Decimal(sale["grand_total"]), sale["id"])
		self.assertEqual(
			Decimal(str(invoice.total_taxes_and_charges)), Decimal(sale["tax_total"]), sale["id"]
		)
		self.assertEqual(Decimal(str(invoice.net_total)), Decimal(sale["net_total"]), sale["id"])
		self.assertEqual(invoice.status, "Paid", sale["id"])

	def test_sales_of_three_stores_arrive_once_by_page_cursor_and_link_header(self):
		stores = {"PG": "page", "CR": "cursor", "LK": "link"}
		for store, style in stores.items():
			self.pos.add_store(store, PER_STORE)
			pos_mapping(f"IH POS {store}", store, style)
		frappe.db.commit()

		for store in stores:
			counts = run_pull(f"IH POS {store}")
			self.assertEqual(
				(counts.fetched, counts.created, counts.failed), (PER_STORE, PER_STORE, 0), store
			)

		sales = [sale for store in stores for sale in self.pos.sales[store]]
		self.assertGreaterEqual(len(sales), 3 * PER_STORE)
		self.assertEqual({line["tax_rate"] for sale in sales for line in sale["lines"]}, set(GST_RATES))
		for sale in sales:
			self.assert_invoice_matches(sale)
		bound = frappe.db.count(
			"Integration Binding", {"connector": CONNECTOR, "reference_doctype": "Sales Invoice"}
		)
		self.assertEqual(bound, len(sales))

		for store in stores:
			again = run_pull(f"IH POS {store}")
			self.assertEqual(again.created + again.updated + again.failed, 0, store)
		self.assertEqual(
			frappe.db.count(
				"Integration Binding", {"connector": CONNECTOR, "reference_doctype": "Sales Invoice"}
			),
			len(sales),
		)

		before = invoice_for("PG-00007")
		changed = self.pos.change_sale("PG", 7)
		counts = run_pull("IH POS PG")
		self.assertEqual((counts.updated, counts.created, counts.failed), (1, 0, 0))
		after = invoice_for("PG-00007")
		self.assertNotEqual(before, after)
		self.assertEqual(frappe.db.get_value("Sales Invoice", before, "docstatus"), 2)
		self.assertEqual(frappe.db.get_value("Sales Invoice", after, "amended_from"), before)
		self.assert_invoice_matches(changed)
		live = {"docstatus": 1, "remarks": "POS sale PG-00007", "creation": (">=", self.started)}
		self.assertEqual(frappe.db.count("Sales Invoice", live), 1)

	def test_bad_records_end_dead_with_their_reason_and_the_rest_of_the_page_is_applied(self):
		disabled = make_customer("IH Disabled POS Customer")
		frappe.db.set_value("Customer", disabled, "disabled", 1)
		self.pos.add_store("BD", 8)
		sales = self.pos.sales["BD"]
		sales[1]["lines"][0]["sku"] = "IH-POS-NEW-ITEM"
		sales[3]["created_at"] = "2026-11-31T10:00:00+05:30"
		sales[5]["customer"] = disabled
		frappe.db.delete("Item", {"item_code": "IH-POS-NEW-ITEM"})
		pos_mapping("IH POS BD", "BD")
		frappe.db.commit()

		counts = run_pull("IH POS BD")

		self.assertEqual((counts.fetched, counts.created, counts.failed), (8, 5, 3))
		dead = {
			row.external_id: row.error
			for row in frappe.get_all(
				"Sync Log",
				filters={"mapping": "IH POS BD", "status": "Dead"},
				fields=["external_id", "error"],
			)
		}
		self.assertEqual(set(dead), {"BD-00002", "BD-00004", "BD-00006"})
		self.assertIn("Item 'IH-POS-NEW-ITEM' for item_code in items row 1 was not found", dead["BD-00002"])
		self.assertIn("posting_date", dead["BD-00004"])
		self.assertIn("2026-11-31T10:00:00+05:30", dead["BD-00004"])
		self.assertIn(disabled, dead["BD-00006"])
		self.assertIn("disabled", dead["BD-00006"].lower())
		for sale_id in dead:
			self.assertIsNone(invoice_for(sale_id))
		for sale in sales:
			if sale["id"] not in dead:
				self.assert_invoice_matches(sale)

		make_item("IH-POS-NEW-ITEM")
		frappe.db.commit()
		row = frappe.db.get_value("Sync Log", {"mapping": "IH POS BD", "external_id": "BD-00002"})
		retry([row])
		frappe.db.commit()
		apply_due_rows("IH POS BD")
		self.assertEqual(frappe.db.get_value("Sync Log", row, "status"), "Success")
		self.assert_invoice_matches(sales[1])

	def test_a_remote_that_is_down_or_rate_limits_loses_nothing_and_the_next_run_catches_up(self):
		self.pos.add_store("DN", 12)
		pos_mapping("IH POS DN", "DN", page_size=5)
		frappe.db.commit()
		self.pos.fail_with = (503, {}, {"detail": "maintenance"})
		counts = run_pull("IH POS DN")
		state = frappe.db.get_value(
			"Mapping", "IH POS DN", ["last_pull_status", "last_pull_error", "next_pull_after"], as_dict=True
		)
		self.assertEqual((counts.fetched, state.last_pull_status), (0, "Failed"))
		self.assertIn("503", state.last_pull_error)
		self.assertEqual(frappe.db.get_value("Connector", CONNECTOR, "consecutive_failures"), 1)

		self.pos.fail_with = (429, {"Retry-After": "120"}, {"detail": "slow down"})
		run_pull("IH POS DN")
		state = frappe.db.get_value(
			"Mapping", "IH POS DN", ["last_pull_error", "next_pull_after"], as_dict=True
		)
		self.assertIn("429", state.last_pull_error)
		wait = (state.next_pull_after - now_datetime()).total_seconds()
		self.assertTrue(100 < wait <= 120, wait)
		self.assertFalse(
			pull_is_due(
				frappe._dict(
					cron_expression="* * * * *",
					next_pull_after=state.next_pull_after,
					last_pulled_at=None,
					creation=self.started,
				),
				now_datetime(),
			)
		)

		self.pos.fail_with = None
		counts = run_pull("IH POS DN")
		self.assertEqual((counts.fetched, counts.created, counts.failed), (12, 12, 0))
		self.assertEqual(frappe.db.get_value("Mapping", "IH POS DN", "last_pull_status"), "Success")
		self.assertEqual(frappe.db.get_value("Connector", CONNECTOR, "consecutive_failures"), 0)
		for sale in self.pos.sales["DN"]:
			self.assert_invoice_matches(sale)

	def test_a_pull_killed_mid_run_resumes_with_no_duplicate_and_no_gap(self):
		self.pos.add_store("KL", 60)
		pos_mapping("IH POS KL", "KL", page_size=6)
		frappe.db.commit()
		self.pos.page_delay = 0.4
		worker = run_site_function("integration_hub.inbound.pull.run_pull", "IH POS KL")
		deadline = time.monotonic() + 120
		while time.monotonic() < deadline and staged_rows("IH POS KL") < 18:
			time.sleep(0.05)
		os.kill(worker.pid, signal.SIGKILL)
		worker.wait(timeout=30)
		self.assertEqual(worker.returncode, -signal.SIGKILL)
		frappe.db.rollback()
		resume_from = frappe.db.get_value("Mapping", "IH POS KL", "saved_cursor")
		self.assertTrue(resume_from and int(resume_from) > 1, resume_from)
		self.assertLess(staged_rows("IH POS KL"), 60, "the pull finished before it was killed")

		self.pos.page_delay = 0
		run_pull("IH POS KL")

		for sale in self.pos.sales["KL"]:
			self.assert_invoice_matches(sale)
		self.assertEqual(
			frappe.db.count(
				"Sales Invoice", {"remarks": ("like", "POS sale KL-%"), "creation": (">=", self.started)}
			),
			60,
		)
		self.assertEqual(
			frappe.db.count("Sync Log", {"mapping": "IH POS KL", "status": ("!=", "Success")}), 0
		)
		self.assertFalse(frappe.db.get_value("Mapping", "IH POS KL", "saved_cursor"))
		watermark = frappe.db.get_value("Mapping", "IH POS KL", "watermark")
		self.assertEqual(
			datetime.fromisoformat(watermark.replace("Z", "+00:00")),
			max(datetime.fromisoformat(s["updated_at"]) for s in self.pos.sales["KL"]).astimezone(
				timezone.utc
			),
		)


def staged_rows(mapping: str) -> int:
	frappe.db.rollback()
	return frappe.db.count("Sync Log", {"mapping": mapping})


class TestPullControls(FrappeTestCase):
	def setUp(self):
		self.pos = company_pos_server()
		make_connector(CONNECTOR, self.pos.url)
		self.pos.add_store("CT", 3)
		self.mapping = pos_mapping("IH POS CT", "CT", cron_expression="*/5 * * * *")
		frappe.db.set_value(
			"Mapping", self.mapping, {"saved_cursor": "7", "watermark": "2026-11-30T00:00:00+00:00"}
		)
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		self.pos.stop()

	def test_only_an_integration_manager_may_pull_now_or_reset_the_cursor(self):
		plain = make_user("ih-plain-puller@example.com", ["Accounts User"])
		manager = make_user("ih-pull-manager@example.com", ["Integration Manager"])
		with role_checks_enforced():
			frappe.set_user(plain)
			self.assertRaises(frappe.PermissionError, pull_now, self.mapping)
			self.assertRaises(frappe.PermissionError, reset_cursor, self.mapping)
			frappe.set_user(manager)
			self.assertEqual(reset_cursor(self.mapping), {"reset": True})
			self.assertTrue(pull_now(self.mapping)["queued"])
		frappe.set_user("Administrator")
		self.assertEqual(
			frappe.db.get_value("Mapping", self.mapping, ["saved_cursor", "watermark"]), (None, None)
		)

	def test_the_minute_tick_enqueues_a_due_mapping_once_and_a_held_lock_stops_a_second_pull(self):
		queued = []
		frappe.db.set_value(
			"Mapping",
			self.mapping,
			{"last_pulled_at": add_to_date(now_datetime(), minutes=-6), "saved_cursor": None},
		)
		frappe.db.commit()
		with patch("integration_hub.inbound.pull.enqueue_pull", side_effect=queued.append):
			schedule_pulls()
			frappe.db.set_value("Mapping", self.mapping, "last_pulled_at", now_datetime())
			frappe.db.commit()
			schedule_pulls()
		self.assertEqual(queued.count(self.mapping), 1)

		holder = frappe.database.get_db(
			host=frappe.conf.db_host, user=frappe.conf.db_name, password=frappe.conf.db_password
		)
		holder.connect()
		try:
			holder.sql("select get_lock(%s, 0)", pull_lock_name(self.mapping))
			self.assertIsNone(run_pull(self.mapping))
			holder.sql("select release_lock(%s)", pull_lock_name(self.mapping))
		finally:
			holder.close()
		counts = run_pull(self.mapping)
		self.assertEqual(counts.created, 3)
