"""Workspace benchmark: the Integration Hub workspace's cards and charts over a million Sync Log rows.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable site with the app installed
(the rows it seeds stay unless --cleanup is given):

    cd ~/frappe-bench/sites
    ../env/bin/python ../apps/integration_hub/benchmarks/workspace_benchmark.py --site bench.integration-hub.localhost

It seeds the rows with SQL (statuses, directions and ten connectors spread over 30 days), then times each
number card, each chart, the shortcut counts, the Connector form's health panel and a bulk retry of 100
Dead rows, through the same Frappe functions the Desk calls. For contrast it also times Frappe's standard
"Count" time-series chart on the same window, which groups by the raw timestamp. It prints figures and
the plan MariaDB chose; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import frappe
from frappe.utils import add_to_date, now_datetime
from on_site import run_on_site

CONNECTORS = [f"IH Bench Connector {n}" for n in range(10)]
CHUNK = 100_000
# out of 1000: what a busy hub's log looks like (mostly delivered, a tail of failures)
STATUS_SHARES = (
	("Success", 930),
	("Skipped", 20),
	("Queued", 15),
	("Failed", 15),
	("Dead", 15),
	("Cancelled", 5),
)


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--rows", type=int, default=1_000_000)
	parser.add_argument("--repeat", type=int, default=3, help="timed runs of each query (after one warm-up)")
	parser.add_argument("--cleanup", action="store_true", help="delete the seeded rows at the end")
	return parser.parse_args()


def measure(args: argparse.Namespace) -> None:
	seed(args.rows)
	report(args.repeat)
	if args.cleanup:
		frappe.db.sql("delete from `tabSync Log` where name like 'bench-%'")
		frappe.db.commit()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: measure(args))


def seed(rows: int) -> None:
	have = frappe.db.sql("select count(*) from `tabSync Log` where name like 'bench-%'")[0][0]
	if have >= rows:
		print(f"{have:,} seeded Sync Log rows already there")
		return
	ensure_connectors()
	status_case = status_expression()
	started = time.perf_counter()
	for first in range(have + 1, rows + 1, CHUNK):
		last = min(first + CHUNK - 1, rows)
		frappe.db.sql(
			f"""
			insert into `tabSync Log` (name, creation, modified, owner, modified_by, docstatus, idx, status,
				direction, connector, mapping, event, reference_doctype, reference_name, attempts,
				next_attempt_at, error)
			select concat('bench-', seq), ts, ts, 'Administrator', 'Administrator', 0, 0, st,
				if(seq % 5 = 0, 'Inbound', 'Outbound'), elt(1 + seq % 10, {connector_list()}),
				'IH Bench Mapping', 'on_submit', 'Sales Invoice', concat('BENCH-SINV-', seq),
				if(st = 'Success', 1, 3), if(st in ('Queued', 'Failed'), ts, null),
				if(st in ('Failed', 'Dead'), 'HTTP 503 Service Unavailable', null)
			from (
				select seq, now(6) - interval floor(seq * 2592000 / {rows}) second - interval (seq % 1000) microsecond
					as ts, {status_case} as st
				from seq_{first}_to_{last}
			) seeded
			"""
		)
		frappe.db.commit()
		print(f"  seeded {last:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
	frappe.db.sql("analyze table `tabSync Log`")
	print(f"seeded {rows - have:,} Sync Log rows in {time.perf_counter() - started:.0f} s")


def status_expression() -> str:
	cases, upper = [], 0
	for status, share in STATUS_SHARES:
		upper += share
		cases.append(f"when seq % 1000 < {upper} then '{status}'")
	return f"case {' '.join(cases)} end"


def connector_list() -> str:
	return ", ".join(frappe.db.escape(name) for name in CONNECTORS)


def ensure_connectors() -> None:
	for index, name in enumerate(CONNECTORS):
		if not frappe.db.exists("Connector", name):
			frappe.get_doc(
				{
					"doctype": "Connector",
					"connector_name": name,
					"protocol": "REST",
					"base_url": "https://api.example.com",
					"health_status": "Degraded" if index < 2 else "Healthy",
				}
			).insert(ignore_permissions=True)
	frappe.db.commit()


def timed(label: str, repeat: int, function) -> object:
	result = function()  # warm-up: the first run also loads metadata and fills caches
	times = []
	for _ in range(repeat):
		started = time.perf_counter()
		result = function()
		times.append((time.perf_counter() - started) * 1000)
	print(f"  {label:<58} median {statistics.median(times):8.1f} ms   min {min(times):8.1f} ms")
	return result


def report(repeat: int) -> None:
	from frappe.desk.doctype.dashboard_chart.dashboard_chart import get as standard_chart
	from frappe.desk.doctype.number_card.number_card import get_result

	from integration_hub.api.sync_log import retry
	from integration_hub.connectors import health_summary
	from integration_hub.integration_hub.dashboard_chart_source.sync_log_by_connector import (
		sync_log_by_connector,
	)
	from integration_hub.integration_hub.dashboard_chart_source.sync_log_outcomes import sync_log_outcomes

	total = frappe.db.sql("select count(*) from `tabSync Log`")[0][0]
	print(f"\nSync Log rows: {total:,}; figures are the median and best of {repeat} runs after a warm-up\n")

	print("Number cards (frappe.desk.doctype.number_card.number_card.get_result, as the workspace calls it)")
	day_ago = str(add_to_date(now_datetime(), days=-1))
	for card in frappe.get_all("Number Card", filters={"module": "Integration Hub"}, pluck="name"):
		doc = frappe.get_doc("Number Card", card)
		filters = json.loads(doc.filters_json)
		if doc.dynamic_filters_json:
			filters.append([doc.document_type, "modified", ">=", day_ago])
		value = timed(
			card, repeat, lambda doc=doc, filters=filters: get_result(doc.as_json(), json.dumps(filters))
		)
		print(f"  {'':<58} = {int(value):,}")

	print("\nCharts (the chart sources' get, timespan Last Week, daily)")
	for chart, source in (
		("Sync Log Outcomes", sync_log_outcomes.get),
		("Inbound vs Outbound", sync_log_outcomes.get),
		("Sync Log by Connector", sync_log_by_connector.get),
	):
		data = timed(chart, repeat, lambda chart=chart, source=source: source(chart_name=chart))
		print(f"  {'':<58} = {sum(sum(d['values']) for d in data['datasets']):,} rows in the window")

	print("\nShortcut counts (frappe.client.get_count, as the shortcut badges call it)")
	workspace = frappe.get_doc("Workspace", "Integration Hub")
	for shortcut in workspace.shortcuts:
		if shortcut.stats_filter:
			# the widget turns [doctype, field, operator, value, hidden] rows into {field: [operator, value]}
			filters = {row[1]: [row[2], row[3]] for row in json.loads(shortcut.stats_filter)}
			timed(
				f"{shortcut.label} ({shortcut.link_to})",
				repeat,
				lambda s=shortcut, f=filters: frappe.client.get_count(s.link_to, f),
			)

	print("\nConnector form")
	timed("health panel of one connector (health_summary)", repeat, lambda: health_summary(CONNECTORS[3]))

	print("\nBulk retry of 100 Dead rows from the list: one request")
	dead = frappe.get_all(
		"Sync Log", filters={"status": "Dead", "name": ("like", "bench-%")}, pluck="name", limit=100
	)
	started = time.perf_counter()
	counted = count_statements(lambda: retry(dead))
	elapsed = (time.perf_counter() - started) * 1000
	print(f"  {'retry(100 names)':<58} {elapsed:8.1f} ms, {counted} SQL statements")
	frappe.db.rollback()

	print("\nBaseline: Frappe's standard Count time-series chart on Sync Log.modified, Last Week, daily")
	baseline = {
		"name": "IH Bench Standard Count",
		"chart_type": "Count",
		"document_type": "Sync Log",
		"based_on": "modified",
		"timespan": "Last Week",
		"time_interval": "Daily",
		"filters_json": "[]",
	}
	timed(
		"standard chart (groups by the raw timestamp)",
		1,
		lambda: standard_chart(chart=json.dumps(baseline), no_cache=1),
	)

	print("\nPlans MariaDB chooses")
	since = str(add_to_date(now_datetime(), days=-7))
	for label, query in (
		(
			"delivered 24 h",
			f"select count(*) from `tabSync Log` where status='Success' and direction='Outbound' and modified >= '{day_ago}'",
		),
		("rows waiting", "select count(*) from `tabSync Log` where status in ('Queued','Running','Failed')"),
		(
			"outcomes chart",
			"select date(modified), status, count(*) from `tabSync Log` force index "
			f"(modified_status_direction_connector_index) where modified >= '{since}' group by 1, 2",
		),
	):
		plan = frappe.db.sql(f"explain {query}", as_dict=True)[0]
		print(f"  {label:<20} key={plan.key} type={plan.type} rows≈{plan.rows} extra={plan.Extra}")


def count_statements(function) -> int:
	calls = 0
	original = frappe.db.sql

	def counting(*args, **kwargs):
		nonlocal calls
		calls += 1
		return original(*args, **kwargs)

	frappe.db.sql = counting
	try:
		function()
	finally:
		frappe.db.sql = original
	return calls


if __name__ == "__main__":
	main()
