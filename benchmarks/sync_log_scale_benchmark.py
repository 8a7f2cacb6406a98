"""Sync Log at a million rows: submit and delivery cost on an empty log and on a full one, in one run.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site (bytecode on; the run
deletes every Sync Log row of the site first):

    cd ~/frappe-bench/sites
    env -u PYTHONDONTWRITEBYTECODE ../env/bin/python ../apps/integration_hub/benchmarks/sync_log_scale_benchmark.py \\
        --site test.integration-hub.localhost

It prints, never asserts: the app's own hooks per submit, a plain insert of one Sync Log row and the delivery
rate through a real RQ worker, first on an empty log and then after seeding finished rows by SQL; the bytes
per row before and after successful rows shed their bodies; the EXPLAIN of every statement the submit hooks,
the delivery worker and the sweeps run on the full log; and the time of clearing the seeded rows with the
longest wait a delivery saw meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import frappe
from on_site import run_on_site

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outbound_benchmark as outbound

CONNECTOR = "IH Scale Bench"
MAPPING = "IH Scale Bench Invoices"


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--rows", type=int, default=1_000_000)
	parser.add_argument("--submits", type=int, default=30)
	parser.add_argument("--deliveries", type=int, default=150)
	parser.add_argument("--inserts", type=int, default=2000)
	return parser.parse_args()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: run(args))


def run(args: argparse.Namespace) -> None:
	from integration_hub.tests.utils import RecordingServer, make_connector, make_mapping_from_template

	server = RecordingServer(responder=outbound.respond, lifetime=outbound.BENCHMARK_MAX_SECONDS)
	try:
		make_connector(CONNECTOR, server.url, max_attempts=3)
		make_mapping_from_template("sales_invoice_to_accounting", CONNECTOR, MAPPING)
		frappe.db.sql("delete from `tabSync Log`")
		frappe.db.commit()
		outbound.warm_caches([MAPPING])
		empty = measure("empty log", args)
		seed(args.rows)
		full = measure(f"{args.rows:,} finished rows", args)
		print("\n== Full log against empty log (goal: within 10%)")
		for key, label in (("hooks", "app hooks per submit"), ("insert", "plain row insert, median")):
			print(
				f"{label:>28}: {full[key]:8.2f} ms vs {empty[key]:8.2f} ms = {full[key] / empty[key]:5.2f}x"
			)
		print(
			f"{'delivery rate':>28}: {full['rate']:8.1f}/s vs {empty['rate']:8.1f}/s = {full['rate'] / empty['rate']:5.2f}x"
		)
		explain_statements(args)
		bytes_per_row()
		clear_while_delivering(args)
	finally:
		server.stop()


def measure(label: str, args: argparse.Namespace) -> dict:
	hooks = hooks_per_submit(args.submits)
	inserts = plain_inserts(args.inserts)
	rate = delivery_rate(args.deliveries)
	print(f"\n== {label}")
	print(f"{'app hooks per submit':>28}: {hooks:8.2f} ms")
	print(
		f"{'plain row insert':>28}: median {statistics.median(inserts):6.3f} ms   p99 "
		f"{sorted(inserts)[int(len(inserts) * 0.99)]:6.3f} ms"
	)
	print(f"{'delivery, real RQ worker':>28}: {rate:8.1f} invoices/s")
	return {"hooks": hooks, "insert": statistics.median(inserts), "rate": rate}


def hooks_per_submit(count: int) -> float:
	from integration_hub.outbound import dispatch

	spent = [0.0]
	originals = {
		name: getattr(dispatch, name) for name in ("on_document_event", "enqueue_pending_deliveries")
	}
	for name, function in originals.items():
		setattr(dispatch, name, outbound.timed(function, spent))
	try:
		for _ in range(count):
			outbound.new_invoice().submit()
			frappe.db.commit()
	finally:
		for name, function in originals.items():
			setattr(dispatch, name, function)
	return spent[0] / count * 1000


def plain_inserts(count: int) -> list[float]:
	from integration_hub.logs import new_log_name

	timings = []
	for _ in range(count):
		started = time.perf_counter()
		frappe.db.sql(
			"""insert into `tabSync Log` (name, status, direction, connector, event, attempts, creation,
				modified, owner, modified_by)
			values (%s, 'Cancelled', 'Outbound', %s, 'bench', 0, now(6), now(6), 'Administrator', 'Administrator')""",
			(new_log_name(), CONNECTOR),
		)
		frappe.db.commit()
		timings.append((time.perf_counter() - started) * 1000)
	frappe.db.sql("delete from `tabSync Log` where event = 'bench'")
	frappe.db.commit()
	return timings


def delivery_rate(count: int) -> float:
	from frappe.utils.background_jobs import get_queue

	from integration_hub.jobs import job_queue

	queue = get_queue(job_queue())
	queue.empty()
	startup = min(outbound.run_burst_worker() for _ in range(2))
	names = outbound.submit_many(count)
	seconds = max(outbound.run_burst_worker() - startup, 1e-6)
	delivered = frappe.db.count(
		"Sync Log", {"connector": CONNECTOR, "status": "Success", "reference_name": ("in", names)}
	)
	return delivered / seconds


def seed(rows: int) -> None:
	"""Finished rows as a month of history leaves them: 40 days old, ~1 KB of stored request each."""
	started = time.perf_counter()
	frappe.db.sql("set session foreign_key_checks = 0")
	done = 0
	while done < rows:
		size = min(100_000, rows - done)
		frappe.db.sql(
			f"""
			insert into `tabSync Log` (name, status, direction, connector, mapping, event, reference_doctype,
				reference_name, external_id, idempotency_key, attempts, http_status, duration_ms, request,
				response, creation, modified, owner, modified_by)
			select concat('0', lpad(conv({done} + seq, 10, 36), 9, '0'), 'seed'), 'Success', 'Outbound',
				%(connector)s, %(mapping)s, 'on_submit', 'Sales Invoice', concat('SEED-', {done} + seq),
				concat('remote-', {done} + seq), concat('seed-', {done} + seq), 1, 200, 42,
				repeat('{{"line": "seeded request body"}} ', 36), '{{"id": "remote"}}',
				now(6) - interval 40 day, now(6) - interval 40 day, 'Administrator', 'Administrator'
			from seq_1_to_{size}
			""",
			{"connector": CONNECTOR, "mapping": MAPPING},
		)
		frappe.db.commit()
		done += size
	print(f"\n== Seeded {rows:,} finished rows by SQL in {time.perf_counter() - started:.0f} s")


def explain_statements(args: argparse.Namespace) -> None:
	"""Every statement a submit's hooks, a delivery job and the two sweeps run, with its plan on the full log."""
	from integration_hub.inbound.apply import sweep as inbound_sweep
	from integration_hub.outbound.outbox import deliver, sweep

	seen: list[str] = []
	real_sql = frappe.db.sql

	def recording_sql(query, *args, **kwargs):
		text = str(query)
		if "tabSync Log" in text and text.lstrip().split(None, 1)[0].lower() in (
			"select",
			"update",
			"delete",
		):
			seen.append(frappe.db.mogrify(text, args[0] if args else kwargs.get("values")))
		return real_sql(query, *args, **kwargs)

	frappe.db.sql = recording_sql
	try:
		outbound.new_invoice().submit()
		frappe.db.commit()
		deliver(CONNECTOR)
		sweep()
		inbound_sweep()
	finally:
		frappe.db.sql = real_sql
	print(
		"\n== EXPLAIN on the full log of each Sync Log statement run by a submit, a delivery and the sweeps"
	)
	for statement in dict.fromkeys(seen):
		plan = frappe.db.sql(f"explain {statement}", as_dict=True)
		steps = "; ".join(
			f"{row.get('table')}: {row.get('type')} via {row.get('key') or 'NO INDEX'} ~{row.get('rows')} rows"
			for row in plan
		)
		print(f"  {' '.join(statement.split())[:110]}\n      → {steps}")


def bytes_per_row() -> None:
	from integration_hub.logs import trim_successful_bodies

	def stored() -> float:
		return frappe.db.sql(
			"""select avg(ifnull(length(request), 0) + ifnull(length(response), 0) + ifnull(length(payload), 0)
				+ 400) from `tabSync Log`"""
		)[0][0]

	before = stored()
	started = time.perf_counter()
	trimmed = trim_successful_bodies()
	print(
		f"\n== Bytes per row (columns + ~400 bytes of fixed fields): {before:.0f} before, {stored():.0f} after "
		f"{trimmed:,} successful rows shed their bodies ({time.perf_counter() - started:.0f} s)"
	)


def clear_while_delivering(args: argparse.Namespace) -> None:
	"""Clear the seeded rows in another process while invoices are submitted and delivered here."""
	sites = os.path.abspath(frappe.local.sites_path)
	command = ["execute", "integration_hub.logs.clear_finished_rows", "--args", "[30]"]
	clearing = subprocess.Popen(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", frappe.local.site, *command],
		cwd=sites,
		stdout=subprocess.PIPE,
		stderr=subprocess.PIPE,
		text=True,
	)
	from integration_hub.outbound.outbox import deliver

	started = time.perf_counter()
	waits = []
	while clearing.poll() is None:
		invoice = outbound.new_invoice()
		begun = time.perf_counter()
		invoice.submit()
		frappe.db.commit()
		deliver(CONNECTOR)
		waits.append(time.perf_counter() - begun)
	elapsed = time.perf_counter() - started
	left = frappe.db.count("Sync Log", {"reference_name": ("like", "SEED-%")})
	print(
		f"\n== Clearing the seeded rows took {elapsed:.0f} s ({left:,} left); meanwhile {len(waits)} invoices were "
		f"submitted and delivered, submit+delivery median {statistics.median(waits) * 1000:.0f} ms, longest "
		f"{max(waits) * 1000:.0f} ms"
	)


if __name__ == "__main__":
	main()
