"""Reconciliation end to end: 1,000 delivered invoices against an accounting remote on 127.0.0.1, every class
of difference found, fixed from the result, and a clean second run; bad remote lists fail the run cleanly."""

from __future__ import annotations

import copy
import os
import time
from collections import Counter, defaultdict

import frappe
from frappe.tests.utils import FrappeTestCase

from integration_hub import reconciliation
from integration_hub.api.sync_log import cancel as cancel_rows
from integration_hub.bindings import get_remote_id
from integration_hub.inbound.apply import apply_due_rows
from integration_hub.inbound.pull import run_pull
from integration_hub.integration_hub.doctype.connector.test_connector import make_user, role_checks_enforced
from integration_hub.mappings import clear_outbound_index
from integration_hub.outbound.outbox import deliver
from integration_hub.tests.remotes import LedgerServer
from integration_hub.tests.test_inbound import company_pos_server, make_pos_masters, pos_mapping
from integration_hub.tests.test_outbound import discard_delivery_jobs
from integration_hub.tests.utils import (
	make_connector,
	make_customer,
	make_item,
	make_mapping_from_template,
	make_sales_invoice,
)

CONNECTOR = "IH Ledger"
MAPPING = "IH Ledger Invoices"
DAYS = ("2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08")
INVOICES = int(os.environ.get("IH_RECONCILE_INVOICES", "1000"))


def deliver_everything() -> None:
	while frappe.db.count("Sync Log", {"connector": CONNECTOR, "status": ("in", ("Queued", "Failed"))}):
		frappe.db.sql(
			"update `tabSync Log` set next_attempt_at = now() where connector = %s and status = 'Failed'",
			CONNECTOR,
		)
		frappe.db.commit()
		deliver(CONNECTOR)
	discard_delivery_jobs(CONNECTOR)


def run_reconciliation(first: str = DAYS[0], last: str = DAYS[-1]):
	name = reconciliation.start(MAPPING, first, last)
	frappe.db.commit()
	reconciliation.run(name)
	return frappe.get_doc("Reconciliation", name)


def open_differences(rec) -> dict[str, list[frappe._dict]]:
	found = defaultdict(list)
	for row in frappe.get_all(
		"Reconciliation Difference",
		filters={"reconciliation": rec.name, "resolution": "Open"},
		fields=["*"],
		order_by="name",
	):
		found[row.difference_class].append(row)
	return found


def set_mapping_enabled(enabled: int) -> None:
	mapping = frappe.get_doc("Mapping", MAPPING)
	mapping.enabled = enabled
	mapping.save(ignore_permissions=True)
	frappe.db.commit()
	clear_outbound_index()


class TestOutboundReconciliation(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.ledger = LedgerServer()
		cls.customer = make_customer(f"IH Ledger Customer {int(time.time())}")
		make_connector(CONNECTOR, cls.ledger.url)
		make_mapping_from_template(
			"sales_invoice_to_accounting", CONNECTOR, MAPPING, condition=f"doc.customer == '{cls.customer}'"
		)
		frappe.db.commit()
		clear_outbound_index()
		cls.invoices = []
		for number in range(INVOICES):
			cls.invoices.append(
				make_sales_invoice(
					items=(("IH-TEST-ITEM", 1 + number % 3, 10 + number % 97),),
					posting_date=DAYS[number % len(DAYS)],
					customer=cls.customer,
				)
			)
			if number % 50 == 49:
				frappe.db.commit()
		frappe.db.commit()
		deliver_everything()
		set_mapping_enabled(0)
		cls.undelivered = [
			make_sales_invoice(
				items=(("IH-TEST-ITEM", 1, 555.55 + number),), posting_date=DAYS[1], customer=cls.customer
			)
			for number in range(3)
		]
		frappe.db.commit()
		set_mapping_enabled(1)

	@classmethod
	def tearDownClass(cls):
		set_mapping_enabled(0)
		cls.ledger.stop()
		super().tearDownClass()

	def tearDown(self):
		frappe.set_user("Administrator")

	def remote_id(self, invoice) -> str:
		return get_remote_id(CONNECTOR, "Sales Invoice", invoice.name, "invoice")

	def remote_body(self, invoice) -> dict:
		return {
			key: value
			for key, value in self.ledger.invoices[self.remote_id(invoice)].items()
			if key not in ("id", "status")
		}

	def live_remote_copies(self) -> Counter:
		return Counter(
			invoice["invoice_number"]
			for invoice in self.ledger.invoices.values()
			if invoice["status"] != "void" and invoice.get("invoice_number")
		)

	def test_1_every_difference_is_found_in_its_class_then_fixed_and_the_next_run_is_clean(self):
		self.assertEqual(len(self.ledger.invoices), INVOICES)
		self.assertEqual(max(self.live_remote_copies().values()), 1)
		deleted = self.invoices[10:17]
		changed = self.invoices[20:25]
		duplicated = self.invoices[30:32]
		cancelled = self.invoices[40:42]
		for invoice in deleted:
			del self.ledger.invoices[self.remote_id(invoice)]
		for invoice in changed:
			remote = self.ledger.invoices[self.remote_id(invoice)]
			remote["totals"] = {**remote["totals"], "grand": float(remote["totals"]["grand"]) + 1.5}
		for invoice in duplicated:
			self.ledger.add(copy.deepcopy(self.remote_body(invoice)))
		by_reference, without_reference = self.undelivered[:2], self.undelivered[2]
		for invoice in self.undelivered:
			self.ledger.add(
				{
					"invoice_number": "" if invoice is without_reference else invoice.name,
					"issue_date": str(invoice.posting_date),
					"currency": invoice.currency,
					"totals": {"grand": invoice.grand_total},
				}
			)
		for invoice in cancelled:
			invoice.reload()
			invoice.cancel()
		frappe.db.commit()
		cancel_rows(
			frappe.get_all(
				"Sync Log",
				filters={"connector": CONNECTOR, "event": "on_cancel", "status": "Queued"},
				pluck="name",
			)
		)
		frappe.db.commit()
		discard_delivery_jobs(CONNECTOR)

		rec = run_reconciliation()

		self.assertEqual(rec.status, "Completed", rec.error)
		found = open_differences(rec)
		self.assertEqual(
			{kind: len(rows) for kind, rows in found.items()},
			{
				"Missing at Remote": 7,
				"Amount Differs": 5,
				"Unknown at Remote": 3,
				"Duplicate at Remote": 2,
				"Status Differs": 2,
			},
		)
		self.assertEqual(rec.difference_count, 19)
		self.assertEqual(
			frappe.get_all(
				"Integration Alert",
				filters={"connector": CONNECTOR, "kind": "Reconciliation Differences"},
				pluck="row_count",
			),
			[19],
		)
		self.assertEqual(
			{row.reference_name for row in found["Missing at Remote"]}, {i.name for i in deleted}
		)
		self.assertEqual({row.reference_name for row in found["Amount Differs"]}, {i.name for i in changed})
		self.assertEqual(
			{row.reference_name for row in found["Duplicate at Remote"]}, {i.name for i in duplicated}
		)
		self.assertEqual({row.reference_name for row in found["Status Differs"]}, {i.name for i in cancelled})
		self.assertEqual(
			{(row.suggested_name, row.match_basis) for row in found["Unknown at Remote"]},
			{(i.name, "reference") for i in by_reference} | {(without_reference.name, "amount and date")},
		)
		for row in found["Amount Differs"]:
			self.assertAlmostEqual(row.remote_amount - row.erpnext_amount, 1.5, places=6)
		self.assert_days_agree(rec)
		comparison = reconciliation.side_by_side(
			frappe.get_doc("Reconciliation Difference", found["Amount Differs"][0].name)
		)
		self.assertEqual([row["field"] for row in comparison if row["differs"]], ["totals.grand"])

		reconciliation.resend([row.name for row in found["Missing at Remote"] + found["Status Differs"]])
		for row in found["Unknown at Remote"]:
			reconciliation.adopt(row.name)
		reconciliation.accept(
			[row.name for row in found["Amount Differs"]], "Rounding corrected at the remote"
		)
		reconciliation.void_at_remote([row.name for row in found["Duplicate at Remote"]])
		frappe.db.commit()
		deliver_everything()

		recreated = [self.remote_id(invoice) for invoice in deleted]
		self.assertTrue(all(remote_id in self.ledger.invoices for remote_id in recreated))
		for invoice in cancelled:
			self.assertEqual(self.ledger.invoices[self.remote_id(invoice)]["status"], "void")
		for invoice in duplicated:
			self.assertEqual(self.ledger.invoices[self.remote_id(invoice)]["status"], "open")

		again = run_reconciliation()

		self.assertEqual(again.status, "Completed", again.error)
		self.assertEqual(dict(open_differences(again)), {})
		self.assertEqual((again.difference_count, again.accepted_count), (0, 5))
		self.assertEqual(again.matched_count, INVOICES + 3 - 5)
		self.assertEqual(max(self.live_remote_copies().values()), 1)
		self.assert_days_agree(again)

	def test_2_a_resent_row_the_remote_already_holds_is_not_created_twice(self):
		invoice = self.invoices[500]
		before = len(self.ledger.invoices)
		mapping = frappe.get_doc("Mapping", MAPPING)
		reconciliation.queue_again(mapping, "Sales Invoice", invoice.name, "on_submit")
		frappe.db.commit()
		deliver_everything()
		self.assertEqual(len(self.ledger.invoices), before)
		self.assertEqual(self.live_remote_copies()[invoice.name], 1)

	def test_3_a_rejected_range_an_html_list_or_an_id_path_that_finds_nothing_fail_the_run_and_change_nothing(
		self,
	):
		def state():
			return (
				copy.deepcopy(self.ledger.invoices),
				frappe.db.count("Integration Binding", {"connector": CONNECTOR}),
				frappe.db.count("Sync Log", {"connector": CONNECTOR}),
			)

		before = state()
		self.ledger.max_days = 1
		rejected = run_reconciliation()
		self.ledger.max_days = 31
		self.ledger.list_answer = (200, {"Content-Type": "text/html"}, "<html><body>Log in</body></html>")
		html = run_reconciliation()
		self.ledger.list_answer = None
		frappe.db.set_value("Mapping", MAPPING, "list_id_path", "uuid")
		frappe.db.commit()
		try:
			no_ids = run_reconciliation()
		finally:
			frappe.db.set_value("Mapping", MAPPING, "list_id_path", "id")
			frappe.db.commit()

		for run, expected in (
			(rejected, "at most 1 days"),
			(html, "not JSON"),
			(no_ids, "remote id path 'uuid' finds nothing"),
		):
			self.assertEqual(run.status, "Failed", expected)
			self.assertIn(expected, run.error)
			self.assertEqual(frappe.db.count("Reconciliation Difference", {"reconciliation": run.name}), 0)
		self.assertEqual(state(), before)

	def test_4_reversed_dates_and_a_mapping_without_a_list_are_refused_in_the_desk(self):
		with self.assertRaisesRegex(frappe.ValidationError, "From Date"):
			reconciliation.start(MAPPING, DAYS[2], DAYS[0])
		frappe.db.set_value("Mapping", MAPPING, "list_path", "")
		try:
			with self.assertRaisesRegex(frappe.ValidationError, "Remote List Path"):
				reconciliation.start(MAPPING, DAYS[0], DAYS[0])
		finally:
			frappe.db.set_value("Mapping", MAPPING, "list_path", "/invoices")
			frappe.db.commit()

	def test_5_managers_run_and_fix_accounts_managers_read_and_nobody_else_sees(self):
		from integration_hub.api import reconciliation as api

		rec = run_reconciliation(DAYS[0], DAYS[0])
		manager = make_user("ih-recon-manager@example.com", ["Integration Manager"])
		accounts = make_user("ih-recon-accounts@example.com", ["Accounts Manager"])
		plain = make_user("ih-recon-plain@example.com", ["Sales User"])
		with role_checks_enforced():
			frappe.set_user(accounts)
			self.assertTrue(frappe.has_permission("Reconciliation", "read", rec.name))
			self.assertTrue(frappe.has_permission("Reconciliation Difference", "read"))
			with self.assertRaises(frappe.PermissionError):
				api.start(MAPPING, DAYS[0], DAYS[0])
			with self.assertRaises(frappe.PermissionError):
				api.accept(["x"], "no")
			frappe.set_user(plain)
			self.assertFalse(frappe.has_permission("Reconciliation", "read", rec.name))
			self.assertFalse(frappe.has_permission("Reconciliation Difference", "read"))
			with self.assertRaises(frappe.PermissionError):
				api.start(MAPPING, DAYS[0], DAYS[0])
			frappe.set_user(manager)
			name = api.start(MAPPING, DAYS[0], DAYS[0])
		frappe.set_user("Administrator")
		self.assertEqual(frappe.db.get_value("Reconciliation", name, "status"), "Queued")

	def test_6_the_nightly_run_reconciles_yesterday_and_a_broken_mapping_does_not_stop_it(self):
		broken_connector = make_connector("IH Ledger Broken", self.ledger.url)
		broken = make_mapping_from_template(
			"sales_invoice_to_accounting", broken_connector, "IH Ledger Broken Invoices", list_path=""
		)
		frappe.db.set_value("Mapping", {"name": ("in", [broken, MAPPING])}, "reconcile_nightly", 1)
		frappe.db.commit()
		before = frappe.db.count("Reconciliation", {"mapping": MAPPING})
		try:
			reconciliation.reconcile_yesterday()
		finally:
			frappe.db.set_value("Mapping", MAPPING, "reconcile_nightly", 0)
			frappe.delete_doc("Mapping", broken, force=True, ignore_permissions=True)
			frappe.db.commit()
			clear_outbound_index()
		runs = frappe.get_all(
			"Reconciliation",
			filters={"mapping": MAPPING, "scheduled": 1},
			fields=["from_date", "to_date", "status"],
			order_by="creation desc",
			limit=1,
		)
		yesterday = frappe.utils.add_days(frappe.utils.today(), -1)
		self.assertEqual(frappe.db.count("Reconciliation", {"mapping": MAPPING}), before + 1)
		self.assertEqual(
			(str(runs[0].from_date), str(runs[0].to_date), runs[0].status), (yesterday, yesterday, "Queued")
		)

	def assert_days_agree(self, rec) -> None:
		"""The per-day counts and sums equal the ones worked out here from both sides."""
		erpnext = defaultdict(lambda: [0, 0.0])
		for _name, posting_date, grand_total in frappe.get_all(
			"Sales Invoice",
			filters={"customer": self.customer, "docstatus": 1},
			fields=["name", "posting_date", "grand_total"],
			as_list=True,
		):
			erpnext[str(posting_date)][0] += 1
			erpnext[str(posting_date)][1] += grand_total
		remote = defaultdict(lambda: [0, 0.0])
		for invoice in self.ledger.invoices.values():
			if invoice["status"] != "void":
				remote[invoice["issue_date"]][0] += 1
				remote[invoice["issue_date"]][1] += float(invoice["totals"]["grand"])
		self.assertEqual([str(row.day) for row in rec.days], list(DAYS))
		for row in rec.days:
			day = str(row.day)
			self.assertEqual((row.erpnext_count, row.remote_count), (erpnext[day][0], remote[day][0]), day)
			self.assertAlmostEqual(row.erpnext_total, erpnext[day][1], places=2)
			self.assertAlmostEqual(row.remote_total, remote[day][1], places=2)
			self.assertAlmostEqual(row.difference, erpnext[day][1] - remote[day][1], places=2)


POS_CONNECTOR = "IH POS Reconcile"
POS_MAPPING = "IH POS Reconcile Sales"
POS_SALES = int(os.environ.get("IH_RECONCILE_POS_SALES", "500"))
UNKNOWN_SKU = "IH-POS-NOT-YET"


class TestInboundReconciliation(FrappeTestCase):
	"""Sales pulled from a POS; some deleted in ERPNext, some still Dead → reported; Re-pull → clean."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_pos_masters()
		if frappe.db.exists("Item", UNKNOWN_SKU):
			frappe.delete_doc("Item", UNKNOWN_SKU, force=True, ignore_permissions=True)
		cls.pos = company_pos_server()
		make_connector(POS_CONNECTOR, cls.pos.url, max_attempts=1)
		cls.pos.add_store("RC", POS_SALES)
		cls.dead_sales = [cls.pos.sales["RC"][number] for number in (6, 7)]
		for sale in cls.dead_sales:
			sale["lines"][0]["sku"] = UNKNOWN_SKU
		pos_mapping(POS_MAPPING, "RC", connector=POS_CONNECTOR)
		frappe.db.commit()
		counts = run_pull(POS_MAPPING)
		assert (counts.created, counts.failed) == (POS_SALES - 2, 2), counts.summary()
		cls.settings = frappe.db.get_single_value("Accounts Settings", "delete_linked_ledger_entries")

	@classmethod
	def tearDownClass(cls):
		frappe.db.set_single_value("Accounts Settings", "delete_linked_ledger_entries", cls.settings)
		frappe.db.set_value("Mapping", POS_MAPPING, "enabled", 0)
		frappe.db.commit()
		cls.pos.stop()
		super().tearDownClass()

	def invoice_of(self, sale: dict) -> str | None:
		return frappe.db.get_value(
			"Integration Binding",
			{"connector": POS_CONNECTOR, "external_id": sale["id"], "remote_object_type": "pos_sale"},
			"reference_name",
		)

	def reconcile(self):
		name = reconciliation.start(POS_MAPPING, "2026-11-29", "2026-11-30")
		frappe.db.commit()
		reconciliation.run(name)
		return frappe.get_doc("Reconciliation", name)

	def test_deleted_invoices_and_dead_sales_are_reported_and_a_repull_makes_it_clean(self):
		deleted_sales = [self.pos.sales["RC"][number] for number in (20, 21, 22)]
		frappe.db.set_single_value("Accounts Settings", "delete_linked_ledger_entries", 1)
		for sale in deleted_sales:
			invoice = frappe.get_doc("Sales Invoice", self.invoice_of(sale))
			invoice.cancel()
			frappe.delete_doc("Sales Invoice", invoice.name, ignore_permissions=True)
		frappe.db.commit()

		rec = self.reconcile()

		self.assertEqual(rec.status, "Completed", rec.error)
		found = open_differences(rec)
		self.assertEqual(
			{kind: len(rows) for kind, rows in found.items()}, {"Not Imported": 3, "Dead in Sync Log": 2}
		)
		self.assertEqual({row.remote_id for row in found["Not Imported"]}, {s["id"] for s in deleted_sales})
		self.assertTrue(all("deleted in ERPNext" in row.detail for row in found["Not Imported"]))
		self.assertEqual(
			{row.remote_id for row in found["Dead in Sync Log"]}, {s["id"] for s in self.dead_sales}
		)
		self.assertEqual((rec.erpnext_count, rec.remote_count), (POS_SALES - 5, POS_SALES))

		make_item(UNKNOWN_SKU)
		frappe.db.commit()
		reconciliation.repull([row.name for rows in found.values() for row in rows])
		frappe.db.commit()
		apply_due_rows(POS_MAPPING)

		for sale in deleted_sales + self.dead_sales:
			invoice = self.invoice_of(sale)
			self.assertTrue(
				invoice and frappe.db.get_value("Sales Invoice", invoice, "docstatus") == 1, sale["id"]
			)
		again = self.reconcile()
		self.assertEqual(dict(open_differences(again)), {})
		self.assertEqual((again.matched_count, again.erpnext_count), (POS_SALES, POS_SALES))
