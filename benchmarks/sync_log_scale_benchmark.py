"""Sync Log at a million rows: submit and delivery cost on an empty log and on a full one, in one run.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site (bytecode on; the run
deletes every Sync Log row of the site first):

    cd ~/frappe-bench/sites
    env -u PYTHONDONTWRITEBYTECODE ../env/bin/python ../apps/integration_hub/benchmarks/sync_log_scale_benchmark.py \\
        --site test.integration-hub.localhost

It prints, never asserts: the app's own hooks per submit, a plain insert of one Sync Log row and the delivery
rate through a real RQ worker, on an empty log and on one holding a million finished rows seeded by SQL; the
bytes per row (stored columns, and on disk after OPTIMIZE TABLE) before and after successful rows shed their
bodies; the EXPLAIN of every statement the submit hooks, the delivery worker and the sweeps run on the full
log; and the time of clearing the seeded rows, its longest chunk (the longest any row lock was held) and the
longest wait a delivery saw meanwhile.

How empty and full are compared fairly. A full log cannot be emptied and refilled between rounds, and a
machine shared with other work drifts, so measuring "empty" once before seeding and "full" once after
compares two moments as much as two logs. Instead the site has two Sync Log tables for the whole run: the
seeded one and an empty one (``CREATE TABLE … LIKE``). Between rounds one ``RENAME TABLE`` statement swaps
which of them is ``tabSync Log`` (atomic, metadata only, the pages of both stay in the buffer pool), so both
sides run in the same site, process, worker and caches, a few seconds apart. After seeding, both tables
are analysed (``ANALYZE TABLE``) and the run waits for InnoDB to write back the seeding's dirty pages; then
one warm-up round per side is run and not counted, and the counted rounds alternate E F, F E, E F … so
neither side always goes first. Each side's figure is the median of its rounds; every round is printed so
the spread is visible. The rows a round writes are deleted at its end, so the empty log stays empty and
the full one stays at the seeded count.

How a round is timed. One real RQ worker (``frappe worker``) runs for the whole comparison. A round first
times plain inserts, then submits a few dozen invoices with the worker stopped (SIGSTOP), timing the app's
hooks alone, without deliveries sharing the two cores (a round's figure is its median submit and median
insert, so one stall of a shared machine does not move it). Deliveries run at a few hundred a second, so the
rows of those submits alone would be drained in a fraction of a second, too short to time on a busy
machine; the round therefore also writes one row each for a few hundred invoices submitted earlier, the way
a submit writes it (``dispatch.queue_outbound``, after-commit enqueue included). The worker is then continued
(SIGCONT) and the delivery rate is the round's rows divided by the time from there until every one of them is
Success: the real job path (fork, connect, claim, send, record) without the worker's start-up, which a
burst worker would add and which is longer than the delivery itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
LOG = "tabSync Log"
SPARE = "ih_bench_spare_sync_log"
"""The one of the two logs that is not ``tabSync Log`` at the moment."""
SWAPPING = "ih_bench_swapping_sync_log"


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--rows", type=int, default=1_000_000)
	parser.add_argument("--rounds", type=int, default=5, help="counted rounds per side")
	parser.add_argument("--submits", type=int, default=60, help="invoices submitted per round (hooks timed)")
	parser.add_argument(
		"--requeued", type=int, default=600, help="rows written per round for earlier invoices"
	)
	parser.add_argument("--inserts", type=int, default=1000, help="plain row inserts per round")
	parser.add_argument("--clear-child", action="store_true", help=argparse.SUPPRESS)
	return parser.parse_args()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: clear_and_time_chunks() if args.clear_child else run(args))


def run(args: argparse.Namespace) -> None:
	from integration_hub.tests.utils import RecordingServer, make_connector, make_mapping_from_template

	server = RecordingServer(responder=outbound.respond, lifetime=outbound.BENCHMARK_MAX_SECONDS)
	logs = TwoLogs()
	try:
		make_connector(CONNECTOR, server.url, max_attempts=3)
		make_mapping_from_template("sales_invoice_to_accounting", CONNECTOR, MAPPING)
		frappe.db.sql(f"delete from `{LOG}`")
		frappe.db.commit()
		logs.create()
		outbound.warm_caches([MAPPING])
		seed(args.rows)
		settle()
		compare(logs, args)
		logs.use("full")
		explain_statements(args)
		bytes_per_row()
		clear_while_delivering(args)
	finally:
		server.stop()
		logs.drop_spare()
		forget_jobs()


class TwoLogs:
	"""The empty log and the full one; :meth:`use` makes one of them ``tabSync Log``."""

	def __init__(self):
		self.current = "full"

	def create(self) -> None:
		frappe.db.sql_ddl(f"drop table if exists `{SPARE}`")
		frappe.db.sql_ddl(f"create table `{SPARE}` like `{LOG}`")

	def use(self, side: str) -> None:
		if side == self.current:
			return
		frappe.db.commit()
		frappe.db.sql("set session lock_wait_timeout = 60")
		frappe.db.sql_ddl(
			f"rename table `{LOG}` to `{SWAPPING}`, `{SPARE}` to `{LOG}`, `{SWAPPING}` to `{SPARE}`"
		)
		self.current = side

	def drop_spare(self) -> None:
		frappe.db.rollback()
		self.use("full")
		frappe.db.sql_ddl(f"drop table if exists `{SPARE}`")


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


def settle(least: float = 30, limit: float = 120) -> None:
	"""Fresh statistics for both logs, then wait (``least`` to ``limit`` s) until InnoDB stops writing back dirty
	pages.

	Other work on the server keeps dirtying pages, so "settled" is when the count stops falling, not zero.
	"""
	started = time.perf_counter()
	frappe.db.sql(f"analyze table `{LOG}`, `{SPARE}`")

	def status(name: str) -> int:
		return int(frappe.db.sql("show global status like %s", name)[0][1])

	previous, dirty = None, status("Innodb_buffer_pool_pages_dirty")
	while time.perf_counter() - started < limit and (
		time.perf_counter() - started < least or previous is None or dirty < 0.95 * previous
	):
		time.sleep(5)
		previous, dirty = dirty, status("Innodb_buffer_pool_pages_dirty")
	print(
		f"   analysed both logs and let the buffer pool settle in {time.perf_counter() - started:.0f} s "
		f"({dirty:,} of {status('Innodb_buffer_pool_pages_total'):,} pages dirty, "
		f"purge history {status('Innodb_history_list_length'):,})"
	)


def compare(logs: TwoLogs, args: argparse.Namespace) -> None:
	forget_jobs()
	earlier = [
		frappe.get_doc("Sales Invoice", name)
		for name in frappe.get_all(
			"Sales Invoice",
			filters={"docstatus": 1},
			pluck="name",
			order_by="creation desc",
			limit=args.requeued,
		)
	]
	worker = start_worker()
	try:
		print(
			f"\n== Rounds: {args.inserts} plain inserts, {args.submits} invoices submitted, then their rows and "
			f"{len(earlier)} rows of earlier invoices delivered"
		)
		for side in ("empty", "full"):
			one_round(logs, side, args, worker, earlier, "warm-up")
		figures: dict[str, list[dict]] = {"empty": [], "full": []}
		for number in range(args.rounds):
			order = ("empty", "full") if number % 2 == 0 else ("full", "empty")
			for side in order:
				figures[side].append(one_round(logs, side, args, worker, earlier, f"round {number + 1}"))
	finally:
		stop_worker(worker)
	print(
		f"\n== Full log ({args.rows:,} finished rows) against empty log, median of {args.rounds} rounds each "
		"(goal: within 10%)"
	)
	for key, label, unit in (
		("hooks", "app hooks per submit, median", "ms"),
		("insert", "plain row insert, median", "ms"),
		("rate", "delivery, real RQ worker", "/s"),
	):
		full = statistics.median(round_[key] for round_ in figures["full"])
		empty = statistics.median(round_[key] for round_ in figures["empty"])
		spread = "   rounds full " + " ".join(f"{r[key]:.2f}" for r in figures["full"])
		spread += " | empty " + " ".join(f"{r[key]:.2f}" for r in figures["empty"])
		print(f"{label:>30}: {full:8.2f} {unit} vs {empty:8.2f} {unit} = {full / empty:5.2f}x{spread}")


def one_round(logs: TwoLogs, side: str, args, worker: subprocess.Popen, earlier: list, label: str) -> dict:
	logs.use(side)
	inserts = plain_inserts(args.inserts)
	hooks, rate = submit_then_deliver(args.submits, earlier, worker)
	figures = {"hooks": hooks, "insert": statistics.median(inserts), "rate": rate}
	print(
		f"{label:>10} {side:>5}: hooks median {hooks:6.2f} ms/submit   plain insert median {figures['insert']:6.3f} ms "
		f"p99 {sorted(inserts)[int(len(inserts) * 0.99)]:6.3f} ms   delivery {rate:6.1f} rows/s"
	)
	return figures


def plain_inserts(count: int) -> list[float]:
	from integration_hub.logs import new_log_name

	timings, names = [], []
	for _ in range(count):
		name = new_log_name()
		started = time.perf_counter()
		frappe.db.sql(
			"""insert into `tabSync Log` (name, status, direction, connector, event, attempts, creation,
				modified, owner, modified_by)
			values (%s, 'Cancelled', 'Outbound', %s, 'bench', 0, now(6), now(6), 'Administrator', 'Administrator')""",
			(name, CONNECTOR),
		)
		frappe.db.commit()
		timings.append((time.perf_counter() - started) * 1000)
		names.append(name)
	delete_rows(names)
	return timings


def submit_then_deliver(count: int, earlier: list, worker: subprocess.Popen) -> tuple[float, float]:
	"""With the worker stopped, submit ``count`` invoices (hooks timed) and write a row for each ``earlier``
	invoice; then time the worker delivering them all. Returns (median ms of hooks per submit, rows per second)."""
	from integration_hub.outbound import dispatch

	wait_until_idle()
	spent = [0.0]
	originals = {
		name: getattr(dispatch, name) for name in ("on_document_event", "enqueue_pending_deliveries")
	}
	os.kill(worker.pid, signal.SIGSTOP)
	try:
		for name, function in originals.items():
			setattr(dispatch, name, outbound.timed(function, spent))
		try:
			invoices, hooks = [], []
			for _ in range(count):
				invoice = outbound.new_invoice()
				before = spent[0]
				invoice.submit()
				frappe.db.commit()
				hooks.append(spent[0] - before)
				invoices.append(invoice.name)
		finally:
			for name, function in originals.items():
				setattr(dispatch, name, function)
		names = frappe.get_all(
			"Sync Log",
			filters={"reference_doctype": "Sales Invoice", "reference_name": ("in", invoices)},
			pluck="name",
		)
		for doc in earlier:
			names.append(dispatch.queue_outbound(MAPPING, doc, "on_submit"))
			frappe.db.commit()
	finally:
		started = time.perf_counter()
		os.kill(worker.pid, signal.SIGCONT)
	deadline = started + 600
	while True:
		done = frappe.db.sql(
			f"select count(*) from `{LOG}` where name in %(names)s and status = 'Success'", {"names": names}
		)[0][0]
		frappe.db.rollback()
		if done >= len(names):
			break
		if time.perf_counter() > deadline:
			raise RuntimeError(f"only {done} of {len(names)} rows delivered in 600 s")
		time.sleep(0.01)
	seconds = time.perf_counter() - started
	delete_rows(names)
	return statistics.median(hooks) * 1000, len(names) / seconds


def delete_rows(names: list[str]) -> None:
	for start in range(0, len(names), 500):
		frappe.db.sql(f"delete from `{LOG}` where name in %(names)s", {"names": names[start : start + 500]})
		frappe.db.commit()


def forget_jobs() -> None:
	"""No job or delivery slot of an earlier run may be waiting for the worker this run starts."""
	from frappe.utils.background_jobs import get_queue, get_redis_conn

	from integration_hub.jobs import job_queue, slot_key
	from integration_hub.outbound.dispatch import delivery_slot

	get_queue(job_queue()).empty()
	get_redis_conn().delete(slot_key(delivery_slot(CONNECTOR)))


def start_worker() -> subprocess.Popen:
	"""One real RQ worker on the queue the app's jobs go to, as production runs it."""
	from integration_hub.jobs import job_queue

	return subprocess.Popen(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", job_queue()],
		stdout=subprocess.DEVNULL,
		stderr=subprocess.DEVNULL,
	)


def stop_worker(worker: subprocess.Popen) -> None:
	os.kill(worker.pid, signal.SIGCONT)
	outbound.stop_worker(worker)


def wait_until_idle(limit: float = 120) -> None:
	"""Until the last round's delivery job has let go of its slot and left the queue and the worker."""
	from frappe.utils.background_jobs import get_queue, get_redis_conn
	from rq.registry import StartedJobRegistry

	from integration_hub.jobs import job_queue, slot_key
	from integration_hub.outbound.dispatch import delivery_slot

	queue = get_queue(job_queue())
	started = StartedJobRegistry(queue=queue)
	key = slot_key(delivery_slot(CONNECTOR))
	deadline = time.perf_counter() + limit
	while get_redis_conn().exists(key) or queue.count or started.count:
		if time.perf_counter() > deadline:
			raise RuntimeError("the delivery job of the last round did not finish")
		time.sleep(0.05)
	time.sleep(0.2)


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
	"""Stored column bytes per row, and on-disk bytes per row after OPTIMIZE TABLE, before and after trimming."""
	from integration_hub.logs import trim_successful_bodies

	before = stored_bytes()
	disk_before = disk_bytes()
	started = time.perf_counter()
	trimmed = trim_successful_bodies()
	seconds = time.perf_counter() - started
	after = stored_bytes()
	disk_after = disk_bytes()
	print(
		f"\n== Bytes per row; {trimmed:,} successful rows shed their bodies in {seconds:.0f} s\n"
		f"{'bodies + ~400 fixed bytes':>28}: {before:6.0f} before, {after:6.0f} after = {after / before:4.2f}x\n"
		f"{'on disk after OPTIMIZE':>28}: {disk_before[0]:6.0f} before ({disk_before[1]:.0f} data + "
		f"{disk_before[2]:.0f} indexes), {disk_after[0]:6.0f} after ({disk_after[1]:.0f} + {disk_after[2]:.0f})"
		f" = {disk_after[0] / disk_before[0]:4.2f}x"
	)


def stored_bytes() -> float:
	return frappe.db.sql(
		f"""select avg(ifnull(length(request), 0) + ifnull(length(response), 0) + ifnull(length(payload), 0)
			+ 400) from `{LOG}`"""
	)[0][0]


def disk_bytes() -> tuple[float, float, float]:
	"""(total, data, indexes) bytes per row from information_schema once OPTIMIZE TABLE has rebuilt the table."""
	frappe.db.sql(f"optimize table `{LOG}`")
	rows = frappe.db.sql(f"select count(*) from `{LOG}`")[0][0]
	data, indexes = frappe.db.sql(
		"""select data_length, index_length from information_schema.tables
		where table_schema = database() and table_name = %s""",
		LOG,
	)[0]
	return (data + indexes) / rows, data / rows, indexes / rows


def clear_while_delivering(args: argparse.Namespace) -> None:
	"""Clear the seeded rows in another process while invoices are submitted and delivered here."""
	sites = os.path.abspath(frappe.local.sites_path)
	clearing = subprocess.Popen(
		[sys.executable, os.path.abspath(__file__), "--site", frappe.local.site, "--clear-child"],
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
	output, errors = clearing.communicate()
	if clearing.returncode:
		raise RuntimeError(f"clearing failed: {errors}")
	chunks = json.loads(output.strip().splitlines()[-1])
	left = frappe.db.count("Sync Log", {"reference_name": ("like", "SEED-%")})
	print(
		f"\n== Clearing {chunks['cleared']:,} rows took {elapsed:.0f} s ({left:,} seeded rows left) in "
		f"{chunks['chunks']} chunks; the longest chunk held its row locks {chunks['longest_ms']:.0f} ms\n"
		f"   meanwhile {len(waits)} invoices were submitted and delivered: submit+delivery median "
		f"{statistics.median(waits) * 1000:.0f} ms, longest {max(waits) * 1000:.0f} ms"
	)


def clear_and_time_chunks() -> None:
	"""In the child: Log Settings' clearing, timing each chunk from its DELETE to its commit (its locks)."""
	from integration_hub.logs import clear_finished_rows

	real_sql, real_commit = frappe.db.sql, frappe.db.commit
	held, opened = [], [None]

	def sql(query, *args, **kwargs):
		if opened[0] is None and str(query).lstrip().lower().startswith("delete"):
			opened[0] = time.perf_counter()
		return real_sql(query, *args, **kwargs)

	def commit(*args, **kwargs):
		result = real_commit(*args, **kwargs)
		if opened[0] is not None:
			held.append(time.perf_counter() - opened[0])
			opened[0] = None
		return result

	frappe.db.sql, frappe.db.commit = sql, commit
	try:
		cleared = clear_finished_rows(30)
	finally:
		frappe.db.sql, frappe.db.commit = real_sql, real_commit
	print(json.dumps({"cleared": cleared, "chunks": len(held), "longest_ms": max(held, default=0) * 1000}))


if __name__ == "__main__":
	main()
