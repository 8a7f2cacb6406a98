"""Inbound benchmark: a pull against a plain insert loop on the same data, and memory over a long pull.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site (bytecode on):

    cd ~/frappe-bench/sites
    env -u PYTHONDONTWRITEBYTECODE ../env/bin/python ../apps/integration_hub/benchmarks/inbound_benchmark.py \\
        --site test.integration-hub.localhost

It prints figures and ratios measured in one run, never asserts on time. The remotes are HTTP servers on
127.0.0.1 that the script starts and stops.

(a) POS sales → submitted, paid Sales Invoices: ``run_pull`` (fetch, stage, map, resolve links, insert,
    submit, bind, one commit per record) against a plain loop that builds the same invoices by hand and runs
    ``frappe.get_doc(...).insert(); .submit()`` with a commit per record. Rounds alternate so drift hits both.
(b) A long pull of light records (ToDo) served page by page: records per second and peak RSS growth.
"""

from __future__ import annotations

import argparse
import resource
import time

import frappe
from on_site import run_on_site

BENCH_CONNECTOR = "IH Inbound Bench"


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--sales", type=int, default=100, help="POS sales per round and side")
	parser.add_argument("--rounds", type=int, default=3)
	parser.add_argument("--records", type=int, default=100_000, help="light records for the memory run")
	parser.add_argument("--skip-memory", action="store_true")
	return parser.parse_args()


def measure(args: argparse.Namespace) -> None:
	measure_pos_pull(args.sales, args.rounds)
	if not args.skip_memory:
		measure_long_pull(args.records)


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: measure(args))


# --- (a) POS sales ---------------------------------------------------------------------------------------------


def measure_pos_pull(sales: int, rounds: int) -> None:
	from integration_hub.inbound.pull import run_pull
	from integration_hub.tests.test_inbound import (
		company_pos_server,
		gst_account,
		make_pos_masters,
		pos_mapping,
	)
	from integration_hub.tests.utils import default_company, make_connector

	company = default_company()
	make_pos_masters()
	accounts = {rate: gst_account(company, rate) for rate in (5, 12, 18)}
	pos = company_pos_server()
	try:
		make_connector(BENCH_CONNECTOR, pos.url)
		frappe.db.commit()
		pulled, plain = 0.0, 0.0
		for number in range(rounds):
			plain_store, pull_store = f"P{number}", f"Q{number}"
			pos.add_store(plain_store, sales)
			pos.add_store(pull_store, sales)
			mapping = pos_mapping(
				f"IH Bench POS {pull_store}", pull_store, connector=BENCH_CONNECTOR, page_size=100
			)
			frappe.db.commit()
			started = time.perf_counter()
			for sale in pos.sales[plain_store]:
				insert_by_hand(sale, company, accounts)
			plain += time.perf_counter() - started
			started = time.perf_counter()
			counts = run_pull(mapping)
			pulled += time.perf_counter() - started
			if counts.created != sales:
				raise SystemExit(f"the pull created {counts.created} of {sales} invoices: {counts.summary()}")
		total = sales * rounds
		print(f"(a) POS sales → submitted Sales Invoices, {total} per side over {rounds} alternating rounds")
		print(
			f"    plain insert+submit loop: {total / plain:7.1f} invoices/s ({1000 * plain / total:.1f} ms each)"
		)
		print(
			f"    Integration Hub pull:     {total / pulled:7.1f} invoices/s ({1000 * pulled / total:.1f} ms each)"
		)
		print(f"    pull / plain time ratio:  {pulled / plain:.3f}x (goal ≤ 1.15x)")
	finally:
		pos.stop()


def insert_by_hand(sale: dict, company: str, accounts: dict) -> None:
	"""What a developer would write without the app: the same invoice, fields set in code."""
	from integration_hub.tests.test_inbound import WALK_IN

	created = frappe.utils.get_datetime(sale["created_at"])
	local = frappe.utils.convert_utc_to_system_timezone(created)
	invoice = frappe.get_doc(
		{
			"doctype": "Sales Invoice",
			"company": company,
			"customer": sale["customer"] or WALK_IN,
			"posting_date": local.date(),
			"posting_time": local.time(),
			"set_posting_time": 1,
			"is_pos": 1,
			"update_stock": 0,
			"disable_rounded_total": 1,
			"currency": sale["currency"],
			"remarks": f"POS sale {sale['id']}",
			"items": [
				{"item_code": line["sku"], "qty": line["qty"], "rate": float(line["price"])}
				for line in sale["lines"]
			],
			"taxes": [
				{
					"charge_type": "Actual",
					"account_head": accounts[tax["rate"]],
					"description": f"GST {tax['rate']}%",
					"tax_amount": float(tax["amount"]),
				}
				for tax in sale["tax_lines"]
			],
			"payments": [
				{"mode_of_payment": payment["method"], "amount": float(payment["amount"])}
				for payment in sale["payments"]
			],
		}
	)
	invoice.insert()
	invoice.submit()
	frappe.db.commit()


# --- (b) memory over a long pull -------------------------------------------------------------------------------


def measure_long_pull(records: int) -> None:
	from integration_hub.inbound.pull import run_pull
	from integration_hub.tests.utils import RecordingServer, make_connector

	def respond(request):
		query = dict(part.split("=", 1) for part in request.query.split("&") if "=" in part)
		page, size = int(query.get("page", 1)), int(query.get("per_page", 500))
		first = (page - 1) * size
		rows = [
			{"id": f"T-{number:07d}", "title": f"Follow up on remote task {number}", "due": "2026-12-15"}
			for number in range(first, min(first + size, records))
		]
		return 200, {}, {"data": rows}

	server = RecordingServer(respond, lifetime=24 * 3600)
	try:
		make_connector(BENCH_CONNECTOR + " Tasks", server.url)
		mapping = make_task_mapping(BENCH_CONNECTOR + " Tasks")
		frappe.db.commit()
		server.requests.clear()
		before = peak_rss_mb()
		started = time.perf_counter()
		counts = run_pull(mapping)
		elapsed = time.perf_counter() - started
		after = peak_rss_mb()
		print(
			f"(b) {counts.fetched} light records (ToDo) pulled in {elapsed:.0f} s: {counts.created / elapsed:.0f}/s"
		)
		print(
			f"    peak RSS {before:.0f} MB → {after:.0f} MB: growth {after - before:.1f} MB (goal ≤ 100 MB)"
		)
		print(f"    {counts.summary()}")
	finally:
		server.stop()


def make_task_mapping(connector: str) -> str:
	name = "IH Bench Remote Tasks"
	if frappe.db.exists("Mapping", name):
		frappe.delete_doc("Mapping", name, force=True, ignore_permissions=True)
	return (
		frappe.get_doc(
			{
				"doctype": "Mapping",
				"mapping_name": name,
				"direction": "Inbound",
				"connector": connector,
				"trigger": "Schedule",
				"cron_expression": "0 * * * *",
				"target_doctype": "ToDo",
				"external_id_path": "id",
				"endpoint_path": "/tasks",
				"records_path": "data",
				"pagination_style": "Page",
				"page_param": "page",
				"size_param": "per_page",
				"page_size": 500,
				"fields": [
					{"target": "description", "source": "title", "source_type": "Path", "required": 1},
					{"target": "date", "source": "due", "source_type": "Path", "transform": "parse_date"},
					{"target": "priority", "source": "Medium", "source_type": "Constant"},
				],
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


def peak_rss_mb() -> float:
	return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
	main()
