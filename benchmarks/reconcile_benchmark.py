"""Reconciliation benchmark: a period of 100,000 invoices against a remote list of the same 100,000.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site (bytecode on):

    cd ~/frappe-bench/sites
    env -u PYTHONDONTWRITEBYTECODE ../env/bin/python ../apps/integration_hub/benchmarks/reconcile_benchmark.py \\
        --site test.integration-hub.localhost

The ERPNext side is seeded by SQL (submitted Sales Invoice rows of one month nothing else uses, each with its
Integration Binding); the remote is an HTTP server on 127.0.0.1 listing the same invoices 500 a page. It
prints, never asserts, over alternating rounds: the time of a plain paged fetch of the remote list plus one
indexed query of the period's invoices (what any reconciliation has to read), next to a reconciliation of
the period by the app; and the peak RSS growth of the process during a reconciliation. The seeded rows are
deleted at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time
from datetime import date, timedelta

import frappe
import requests
from on_site import run_on_site

CONNECTOR = "IH Reconcile Bench"
MAPPING = "IH Reconcile Bench Invoices"
FIRST_DAY = date(2025, 6, 1)
DAYS = 30
PREFIX = "IH-RB-"
PAGE = 500


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--records", type=int, default=100_000)
	parser.add_argument("--rounds", type=int, default=3)
	return parser.parse_args()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: run(args))


def run(args: argparse.Namespace) -> None:
	from integration_hub.reconciliation import reconcile
	from integration_hub.tests.remotes import LedgerServer
	from integration_hub.tests.utils import make_connector, make_mapping_from_template

	ledger = LedgerServer(max_days=DAYS + 1)
	last_day = FIRST_DAY + timedelta(days=DAYS - 1)
	try:
		make_connector(CONNECTOR, ledger.url, read_timeout=30)
		make_mapping_from_template(
			"sales_invoice_to_accounting", CONNECTOR, MAPPING, enabled=0, page_size=PAGE
		)
		frappe.db.commit()
		started = time.perf_counter()
		seed(ledger, args.records)
		print(
			f"seeded {args.records:,} invoices, bindings and remote records in {time.perf_counter() - started:.0f} s"
		)
		mapping = frappe.get_doc("Mapping", MAPPING)
		plain_times, app_times, growths = [], [], []
		for number in range(args.rounds):
			plain_times.append(timed(lambda: plain_read(ledger.url, last_day)))
			sampler = RssSampler()
			with sampler:
				seconds = timed(lambda: check_outcome(reconcile(mapping, FIRST_DAY, last_day), args.records))
			app_times.append(seconds)
			growths.append(sampler.growth_mb)
			print(
				f"round {number + 1}: plain fetch + query {plain_times[-1]:.2f} s, reconciliation {seconds:.2f} s, "
				f"RSS growth {sampler.growth_mb:.1f} MB"
			)
		plain, app = statistics.median(plain_times), statistics.median(app_times)
		print(f"{args.records:,} records over {DAYS} days, {args.rounds} alternating rounds (medians):")
		print(f"    plain paged fetch of the remote list + one indexed query: {plain:.2f} s")
		print(f"    reconciliation (classes, per-day totals):                 {app:.2f} s")
		print(f"    reconciliation / plain time ratio: {app / plain:.2f}x (goal ≤ 2x)")
		print(
			f"    peak RSS growth during a reconciliation: {max(growths):.1f} MB at most (goal ≤ 100 MB); "
			f"process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
		)
	finally:
		ledger.stop()
		frappe.db.rollback()
		frappe.db.sql("delete from `tabSales Invoice` where name like %s", PREFIX + "%")
		frappe.db.delete("Integration Binding", {"connector": CONNECTOR})
		frappe.db.commit()


def seed(ledger, records: int) -> None:
	"""Submitted invoice rows and their bindings by SQL, and the same invoices at the remote."""
	company = (
		frappe.db.get_single_value("Global Defaults", "default_company")
		or frappe.get_all("Company", pluck="name", limit=1)[0]
	)
	currency = frappe.get_cached_value("Company", company, "default_currency")
	now = frappe.utils.now_datetime()
	frappe.db.sql("delete from `tabSales Invoice` where name like %s", PREFIX + "%")
	for start in range(0, records, 5000):
		invoices, bindings = [], []
		for number in range(start, min(start + 5000, records)):
			name = f"{PREFIX}{number:07d}"
			day = (FIRST_DAY + timedelta(days=number % DAYS)).isoformat()
			total = round(10 + (number * 37) % 99_000 / 100, 2)
			remote = ledger.add(
				{"invoice_number": name, "issue_date": day, "currency": currency, "totals": {"grand": total}}
			)
			invoices.append((name, company, "IH Bench Customer", day, total, currency, 1, now, now))
			bindings.append(
				(
					frappe.generate_hash(length=12),
					CONNECTOR,
					"Sales Invoice",
					name,
					"invoice",
					remote["id"],
					MAPPING,
					now,
					now,
				)
			)
		frappe.db.bulk_insert(
			"Sales Invoice",
			[
				"name",
				"company",
				"customer",
				"posting_date",
				"grand_total",
				"currency",
				"docstatus",
				"creation",
				"modified",
			],
			invoices,
		)
		frappe.db.bulk_insert(
			"Integration Binding",
			[
				"name",
				"connector",
				"reference_doctype",
				"reference_name",
				"remote_object_type",
				"external_id",
				"mapping",
				"creation",
				"modified",
			],
			bindings,
		)
		frappe.db.commit()


def plain_read(url: str, last_day: date) -> None:
	"""What reading both sides costs with nothing else: every page of the list, and the period's invoices."""
	session = requests.Session()
	page, fetched = 1, 0
	while True:
		body = session.get(
			f"{url}/invoices",
			params={
				"issued_from": FIRST_DAY.isoformat(),
				"issued_to": last_day.isoformat(),
				"page": page,
				"per_page": PAGE,
			},
			timeout=30,
		).json()
		fetched += len(body["data"])
		if len(body["data"]) < PAGE:
			break
		page += 1
	rows = frappe.db.sql(
		"select name, posting_date, grand_total, currency, docstatus from `tabSales Invoice` "
		"where posting_date between %s and %s and docstatus in (1, 2)",
		(FIRST_DAY, last_day),
	)
	if not fetched or not rows:
		raise SystemExit("the plain read found nothing")


def check_outcome(outcome, records: int) -> None:
	if outcome.matched != records or outcome.differences:
		raise SystemExit(
			f"expected {records} matched and no difference, got {outcome.matched} / {len(outcome.differences)}"
		)


def timed(body) -> float:
	started = time.perf_counter()
	body()
	return time.perf_counter() - started


class RssSampler:
	"""The process's resident memory sampled every 20 ms while the block runs: peak less the start."""

	def __enter__(self):
		self.start = self.peak = rss_mb()
		self.running = True
		self.thread = threading.Thread(target=self.sample, daemon=True)
		self.thread.start()
		return self

	def sample(self) -> None:
		while self.running:
			self.peak = max(self.peak, rss_mb())
			time.sleep(0.02)

	def __exit__(self, *_exc):
		self.running = False
		self.thread.join()
		self.peak = max(self.peak, rss_mb())

	@property
	def growth_mb(self) -> float:
		return self.peak - self.start


def rss_mb() -> float:
	with open("/proc/self/statm") as statm:
		return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


if __name__ == "__main__":
	main()
