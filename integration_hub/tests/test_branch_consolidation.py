"""Branch → head office through the head office's ingest API, exactly once even when every first answer is lost.

The head office is a second site of this bench (``IH_HEAD_OFFICE_SITE``, prepared by ``.ci/run``) served by
gunicorn on 127.0.0.1; the branch connector's read timeout is shorter than the head office takes to create
and submit an invoice, so the first post of each invoice times out after the head office committed it.
"""

from __future__ import annotations

import json
import os
import time

import frappe

from integration_hub.mappings import clear_outbound_index
from integration_hub.outbound.outbox import deliver
from integration_hub.tests.utils import (
	ServedSiteTestCase,
	bench_command,
	make_connector,
	make_customer,
	make_item,
	make_rows_due,
	make_sales_invoice,
	mapping_from_template,
)

HEAD_OFFICE = os.environ.get("IH_HEAD_OFFICE_SITE", "ho.integration-hub.localhost")
CONNECTOR = "IH Head Office"
ITEMS = ("IH-TEST-ITEM", "IH-BRANCH-ITEM")


def on_head_office(method: str, **kwargs):
	"""Run ``integration_hub.tests.head_office.<method>`` on the head-office site; its return value."""
	result = bench_command(
		HEAD_OFFICE, "execute", f"integration_hub.tests.head_office.{method}", "--kwargs", json.dumps(kwargs)
	)
	if result.returncode:
		raise AssertionError(f"{method} on {HEAD_OFFICE} failed: {result.stderr[-3000:]}")
	return json.loads(result.stdout.strip().splitlines()[-1])


class TestBranchToHeadOffice(ServedSiteTestCase):
	@classmethod
	def prepare_site(cls):
		if not os.path.isdir(os.path.join(frappe.local.sites_path, HEAD_OFFICE)):
			raise AssertionError(f"The head-office site {HEAD_OFFICE} is missing; .ci/run prepares it")
		for item in ITEMS:
			make_item(item)
		cls.customer = make_customer()
		cls.branch = f"BR{int(time.time())}"
		cls.head_office = on_head_office("prepare", items=list(ITEMS), customer=cls.customer)

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_connector(
			CONNECTOR,
			cls.site.url,
			auth_type="API Key",
			api_key_name="Authorization",
			api_key=cls.head_office["token"],
			read_timeout=0.25,
			max_attempts=12,
			backoff_base_seconds=1,
			backoff_max_seconds=2,
			headers=[{"header_name": "X-Frappe-Site-Name", "header_value": HEAD_OFFICE}],
		)
		template = mapping_from_template(
			"sales_invoice_to_head_office", CONNECTOR, "IH Head Office Invoices", enabled=1
		)
		mapping = frappe.get_doc("Mapping", template)
		mapping.body_template = mapping.body_template.replace("BRANCH-1", cls.branch)
		mapping.save(ignore_permissions=True)
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		"""Its outbound mapping listens to every Sales Invoice submit; later tests must not meet it."""
		frappe.db.set_value("Mapping", "IH Head Office Invoices", "enabled", 0)
		clear_outbound_index()
		frappe.db.commit()
		super().tearDownClass()

	def deliver_everything(self, seconds: float = 120) -> None:
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			deliver(CONNECTOR)
			frappe.db.rollback()
			if not frappe.db.count(
				"Sync Log", {"connector": CONNECTOR, "status": ("in", ("Queued", "Failed", "Running"))}
			):
				return
			time.sleep(0.5)
			make_rows_due(CONNECTOR)
		self.fail("rows were still waiting after two minutes")

	def test_each_branch_invoice_exists_once_at_the_head_office_and_a_cancel_follows(self):
		invoices = [
			make_sales_invoice(items=((ITEMS[n % 2], 1 + n, 37.35 + n), (ITEMS[0], 2, 11.1)), tax_rate=18)
			for n in range(4)
		]
		frappe.db.commit()
		self.deliver_everything()

		rows = frappe.get_all(
			"Sync Log",
			filters={"connector": CONNECTOR, "reference_name": ("in", [i.name for i in invoices])},
			fields=["status", "attempts", "error"],
		)
		self.assertEqual({row.status for row in rows}, {"Success"}, rows)
		self.assertTrue(
			any(row.attempts > 1 for row in rows), "no first post timed out: the test proves nothing"
		)
		arrived = on_head_office("invoices", branch=self.branch)
		by_remark = {}
		for copy in arrived:
			by_remark.setdefault(copy["remarks"], []).append(copy)
		for invoice in invoices:
			copies = by_remark.get(f"Branch invoice {self.branch} {invoice.name}", [])
			self.assertEqual(len(copies), 1, f"{invoice.name} arrived {len(copies)} times")
			self.assertEqual(copies[0]["docstatus"], 1)
			self.assertAlmostEqual(copies[0]["grand_total"], invoice.grand_total, places=2)
			self.assertAlmostEqual(
				copies[0]["total_taxes_and_charges"], invoice.total_taxes_and_charges, places=2
			)

		invoices[0].reload()
		invoices[0].cancel()
		frappe.db.commit()
		self.deliver_everything()
		arrived = on_head_office("invoices", branch=self.branch)
		states = {copy["remarks"]: copy["docstatus"] for copy in arrived}
		self.assertEqual(states[f"Branch invoice {self.branch} {invoices[0].name}"], 2)
		self.assertEqual(states[f"Branch invoice {self.branch} {invoices[1].name}"], 1)
		self.assertEqual(len(arrived), 4)
