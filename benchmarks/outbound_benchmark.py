"""Outbound benchmark: submit-time cost, delivery throughput and batching, against baselines in the same run.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site:

    cd ~/frappe-bench/sites
    ../env/bin/python ../apps/integration_hub/benchmarks/outbound_benchmark.py --site test.integration-hub.localhost

It prints ratios, never asserts on time. Everything is sent to an HTTP server on 127.0.0.1 that the
script starts and stops. Baselines:

* submit cost: the same Sales Invoice submit with no mapping, and with Frappe's own Webhook instead;
* delivery: Frappe's Webhook job body (``enqueue_webhook``) called in-process for the same invoices,
  which already spares it the per-event RQ job overhead it has in production;
* delivery over the wire: a plain keep-alive ``requests.Session`` loop posting the same payloads one by one,
  against which both one-request-per-row and batched delivery are given as a ratio;
* commit-to-remote latency: a steady stream of submits with one long-running RQ worker and no scheduler,
  p50 / p99 / max from each submit's commit to the remote receiving it, for the app and for Frappe's Webhook.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time

import frappe
import requests
from on_site import run_on_site


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--submits", type=int, default=40, help="invoices submitted per mode")
	parser.add_argument("--deliveries", type=int, default=200, help="invoices delivered per method")
	parser.add_argument("--batch-size", type=int, default=50)
	parser.add_argument("--stream", type=int, default=200, help="invoices submitted per latency run")
	parser.add_argument("--stream-rate", type=float, default=10.0, help="invoices submitted per second")
	return parser.parse_args()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: run(args))


def run(args: argparse.Namespace) -> None:
	from integration_hub.tests.utils import RecordingServer, make_connector, make_mapping_from_template

	server = RecordingServer(responder=respond, lifetime=BENCHMARK_MAX_SECONDS)
	try:
		single = make_connector("IH Bench", server.url, max_attempts=3)
		batched = make_connector("IH Bench Batch", server.url, max_attempts=3)
		mapping = make_mapping_from_template("sales_invoice_to_accounting", single, "IH Bench Invoices")
		batch_mapping = make_mapping_from_template(
			"sales_invoice_to_accounting",
			batched,
			"IH Bench Invoices Batched",
			batch_size=args.batch_size,
			batch_path="/invoices/batch",
			batch_results_path="results",
		)
		webhook = make_webhook(server.url)
		frappe.db.commit()

		print(f"server: {server.url}; python requests {requests.__version__}")
		measure_submit_overhead(args.submits, mapping, batch_mapping, webhook)
		measure_delivery(args.deliveries, mapping, batch_mapping, webhook, single, batched, server)
		measure_with_real_workers(args.deliveries, mapping, batch_mapping, webhook, batched, server)
		measure_commit_to_remote_latency(
			args.stream, args.stream_rate, mapping, batch_mapping, webhook, server
		)
	finally:
		server.stop()
		set_modes(None, "IH Bench Invoices", "IH Bench Invoices Batched", WEBHOOK_NAME)
		frappe.db.commit()


def respond(request):
	if request.path == "/invoices/batch":
		records = request.json()["records"]
		return 200, {}, {"results": [{"id": f"B-{r['invoice_number']}"} for r in records]}
	return 201, {}, {"id": f"R-{request.json()['invoice_number']}"}


def make_webhook(url: str) -> str:
	if frappe.db.exists("Webhook", WEBHOOK_NAME):
		frappe.delete_doc("Webhook", WEBHOOK_NAME, force=True, ignore_permissions=True)
	doc = frappe.get_doc(
		{
			"doctype": "Webhook",
			"__newname": WEBHOOK_NAME,
			"webhook_doctype": "Sales Invoice",
			"webhook_docevent": "on_submit",
			"request_url": f"{url}/webhook",
			"request_method": "POST",
			"request_structure": "JSON",
			"webhook_json": WEBHOOK_BODY,
			"enabled": 0,
			"timeout": 5,
		}
	).insert(ignore_permissions=True)
	return doc.name


WEBHOOK_NAME = "IH Bench Webhook"
BENCHMARK_MAX_SECONDS = 3600
WEBHOOK_BODY = """{
 "invoice_number": {{ doc.name | tojson }},
 "customer": {{ doc.customer | tojson }},
 "issue_date": {{ doc.posting_date | string | tojson }},
 "lines": [{% for item in doc["items"] %}{"sku": {{ item.item_code | tojson }}, "quantity": {{ item.qty }},
   "unit_price": {{ item.rate }}, "amount": {{ item.amount }}}{% if not loop.last %},{% endif %}{% endfor %}],
 "tax_lines": [{% for tax in doc.taxes %}{"account": {{ tax.account_head | tojson }},
   "amount": {{ tax.tax_amount }}}{% if not loop.last %},{% endif %}{% endfor %}],
 "totals": {"net": {{ doc.net_total }}, "tax": {{ doc.total_taxes_and_charges }}, "grand": {{ doc.grand_total }}}
}"""


def set_modes(mapping: str | None, *others) -> None:
	"""Enable exactly one sender (a mapping name, a webhook name, or none) of the ones given."""
	from integration_hub.mappings import clear_outbound_index

	for name in others:
		if name and frappe.db.exists("Mapping", name):
			frappe.db.set_value("Mapping", name, "enabled", int(name == mapping))
		elif name and frappe.db.exists("Webhook", name):
			frappe.db.set_value("Webhook", name, "enabled", int(name == mapping))
	frappe.db.commit()
	clear_outbound_index()
	frappe.cache.delete_value("webhooks")
	warm_caches(others)


def warm_caches(senders) -> None:
	"""Rebuild what a running site keeps cached, so the timed submit pays only its per-event cost."""
	from frappe.integrations.doctype.webhook import get_all_webhooks

	from integration_hub.mappings import get_outbound_index

	get_outbound_index()
	frappe.cache.get_value("webhooks", get_all_webhooks)
	for name in senders:
		if name and frappe.db.exists("Mapping", name):
			frappe.get_cached_doc("Mapping", name)


def new_invoice():
	from integration_hub.tests.utils import make_sales_invoice

	invoice = make_sales_invoice(items=(("IH-TEST-ITEM", 2, 50.0), ("IH-TEST-ITEM-2", 1, 25.5)), submit=False)
	frappe.db.commit()
	return invoice


def measure_submit_overhead(count: int, mapping: str, batch_mapping: str, webhook: str) -> None:
	"""Interleave the three modes invoice by invoice so drift in the site hits them all alike.

	Besides end-to-end medians it times the app's own hooks (outbox row + after-commit enqueue) during
	the active-mapping submits, which is the overhead itself without the submit's own noise.
	"""
	from integration_hub.outbound import dispatch

	modes = {"no mapping": None, "active mapping": mapping, "Frappe Webhook": webhook}
	timings: dict[str, list[float]] = {label: [] for label in modes}
	hook_seconds = [0.0]
	for attribute in ("on_document_event", "enqueue_pending_deliveries"):
		setattr(dispatch, attribute, timed(getattr(dispatch, attribute), hook_seconds))
	new_invoice().submit()
	frappe.db.commit()
	for _round in range(count):
		order = list(modes.items())
		random.shuffle(order)
		for label, sender in order:
			set_modes(sender, mapping, batch_mapping, webhook)
			invoice = new_invoice()
			hooks_before = hook_seconds[0]
			started = time.perf_counter()
			invoice.submit()
			frappe.db.commit()
			timings[label].append(time.perf_counter() - started)
			if label != "active mapping":
				hook_seconds[0] = hooks_before
	base = statistics.median(timings["no mapping"])
	print(f"\n== Submit-time cost of one Sales Invoice ({count} submits per mode, submit + commit)")
	for label, values in timings.items():
		median = statistics.median(values)
		paired = statistics.median(v / b for v, b in zip(values, timings["no mapping"], strict=True))
		print(
			f"{label:>16}: median {median * 1000:8.2f} ms   ratio to no mapping {median / base:5.3f}x"
			f"   (median of paired ratios {paired:5.3f}x)"
		)
	hook_ms = hook_seconds[0] / count * 1000
	print(
		f"{'app hooks':>16}: {hook_ms:8.2f} ms per submit with an active mapping"
		f" = {1 + hook_ms / (base * 1000):5.3f}x of a submit with no mapping"
	)


def timed(function, total: list[float]):
	def wrapper(*args, **kwargs):
		started = time.perf_counter()
		try:
			return function(*args, **kwargs)
		finally:
			total[0] += time.perf_counter() - started

	return wrapper


def submit_many(count: int) -> list[str]:
	names = []
	for _ in range(count):
		invoice = new_invoice()
		invoice.submit()
		frappe.db.commit()
		names.append(invoice.name)
	return names


def measure_delivery(count, mapping, batch_mapping, webhook, single, batched, server) -> None:
	from frappe.integrations.doctype.webhook.webhook import enqueue_webhook

	from integration_hub.outbound.outbox import deliver

	set_modes(None, mapping, batch_mapping, webhook)
	names = submit_many(count)
	frappe.db.commit()

	hook = frappe.get_doc("Webhook", webhook)
	docs = [frappe.get_doc("Sales Invoice", name) for name in names]
	sent_before = len(server.requests)
	started = time.perf_counter()
	for doc in docs:
		enqueue_webhook(doc, hook)
		frappe.db.commit()
	webhook_seconds = time.perf_counter() - started
	assert len(server.requests) - sent_before == count

	rates = {"Frappe Webhook job, in-process": count / webhook_seconds}
	for label, connector, mapping_name in [
		("Integration Hub, one request per row", single, mapping),
		("Integration Hub, batched", batched, batch_mapping),
	]:
		queue_rows(names, mapping_name, connector)
		started = time.perf_counter()
		delivered = deliver(connector)
		seconds = time.perf_counter() - started
		done = frappe.db.count("Sync Log", {"connector": connector, "status": "Success"})
		assert delivered == count and done >= count, (delivered, done)
		rates[label] = count / seconds

	base = rates["Frappe Webhook job, in-process"]
	print(f"\n== Invoices delivered per second ({count} invoices, one worker)")
	for label, rate in rates.items():
		print(f"{label:>38}: {rate:9.1f}/s   ratio to Frappe Webhook {rate / base:6.2f}x")

	payloads = [request.json() for request in server.requests if request.path == "/invoices"][-count:]
	session = requests.Session()
	started = time.perf_counter()
	for payload in payloads:
		session.post(f"{server.url}/invoices", json=payload, timeout=(5, 30)).raise_for_status()
	loop_rate = count / (time.perf_counter() - started)
	print("\n== Delivery vs a plain keep-alive requests loop posting the same payloads to the same server")
	print(f"{'plain requests.Session loop':>38}: {loop_rate:9.1f}/s")
	for label in ("Integration Hub, one request per row", "Integration Hub, batched"):
		print(f"{label:>38}: {rates[label]:9.1f}/s   ratio to the loop {rates[label] / loop_rate:6.2f}x")


def run_burst_worker() -> float:
	"""Seconds for a real RQ worker (``frappe worker --burst``) to drain the default queue and exit."""
	started = time.perf_counter()
	subprocess.run(
		[
			sys.executable,
			"-m",
			"frappe.utils.bench_helper",
			"frappe",
			"worker",
			"--queue",
			"default",
			"--burst",
		],
		check=True,
		capture_output=True,
		timeout=1800,
	)
	return time.perf_counter() - started


def measure_with_real_workers(count, mapping, batch_mapping, webhook, batched, server) -> None:
	"""The same invoices through each system's own production path: submit, RQ job(s), a real worker."""
	from frappe.utils.background_jobs import get_queue

	queue = get_queue("default")
	queue.empty()
	startup = min(run_burst_worker() for _ in range(2))
	results = {}
	for label, sender, connector in [
		("Frappe Webhook (one RQ job per event)", webhook, None),
		("Integration Hub, batched", batch_mapping, batched),
	]:
		set_modes(sender, mapping, batch_mapping, webhook)
		queue.empty()
		sent_before = len(server.requests)
		names = submit_many(count)
		seconds = max(run_burst_worker() - startup, 1e-6)
		if connector:
			delivered = frappe.db.count(
				"Sync Log", {"connector": connector, "status": "Success", "reference_name": ("in", names)}
			)
		else:
			delivered = len(server.requests) - sent_before
		results[label] = (delivered / seconds, delivered)
	base = results["Frappe Webhook (one RQ job per event)"][0]
	print(
		f"\n== Real RQ worker draining {count} submitted invoices (worker start-up {startup:.2f}s subtracted)"
	)
	for label, (rate, delivered) in results.items():
		print(
			f"{label:>38}: {rate:9.1f}/s   ratio to Frappe Webhook {rate / base:6.2f}x"
			f"   delivered {delivered} of {count}"
		)


def start_worker() -> subprocess.Popen:
	"""A long-running RQ worker on the default queue, as production runs it (``frappe worker``)."""
	return subprocess.Popen(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", "default"],
		stdout=subprocess.DEVNULL,
		stderr=subprocess.DEVNULL,
	)


def stop_worker(worker: subprocess.Popen) -> None:
	worker.terminate()
	try:
		worker.wait(30)
	except subprocess.TimeoutExpired:
		worker.kill()
		worker.wait(30)


def wait_for_arrivals(server, names: list[str], deadline: float) -> dict[str, float]:
	"""{invoice name: when the remote first received it}, waiting until all arrived or ``deadline``."""
	wanted = set(names)
	while True:
		arrived = {}
		for request in list(server.requests):
			number = (request.json() or {}).get("invoice_number") if request.body else None
			if number in wanted and number not in arrived:
				arrived[number] = request.received_at
		if len(arrived) == len(wanted) or time.time() > deadline:
			return arrived
		time.sleep(0.2)


def percentile(values: list[float], fraction: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def measure_commit_to_remote_latency(count, rate, mapping, batch_mapping, webhook, server) -> None:
	"""A steady stream of submits to a healthy remote with one real worker running, and no scheduler: every
	row must reach the remote through the job its own commit asked for. Latency is from the submit's
	commit to the remote receiving the request."""
	from frappe.utils.background_jobs import get_queue

	get_queue("default").empty()
	results = {}
	for label, sender in [("Integration Hub", mapping), ("Frappe Webhook", webhook)]:
		set_modes(sender, mapping, batch_mapping, webhook)
		worker = start_worker()
		try:
			warm_up = submit_many(1)
			wait_for_arrivals(server, warm_up, time.time() + 60)
			committed = {}
			started = time.perf_counter()
			for position in range(count):
				pause = started + position / rate - time.perf_counter()
				if pause > 0:
					time.sleep(pause)
				invoice = new_invoice()
				invoice.submit()
				frappe.db.commit()
				committed[invoice.name] = time.time()
			achieved = count / (time.perf_counter() - started)
			arrived = wait_for_arrivals(server, list(committed), time.time() + 90)
		finally:
			stop_worker(worker)
		latencies = [arrived[name] - at for name, at in committed.items() if name in arrived]
		results[label] = (latencies, count - len(latencies), achieved)
	print(
		f"\n== Commit-to-remote latency: {count} invoices submitted at up to {rate:g}/s, one RQ worker, no scheduler"
	)
	for label, (latencies, missing, achieved) in results.items():
		if not latencies:
			print(f"{label:>38}: nothing arrived")
			continue
		print(
			f"{label:>38}: p50 {percentile(latencies, 0.5) * 1000:7.0f} ms   p99 {percentile(latencies, 0.99) * 1000:7.0f} ms"
			f"   max {max(latencies) * 1000:7.0f} ms   submitted at {achieved:4.1f}/s   not arrived within 90 s: {missing}"
		)


def queue_rows(names: list[str], mapping_name: str, connector: str) -> None:
	"""Write the outbox rows a submit would have written, so delivery alone is timed."""
	from integration_hub.outbound.dispatch import queue_outbound

	frappe.db.delete("Sync Log", {"connector": connector})
	frappe.db.delete("Integration Binding", {"connector": connector})
	for name in names:
		queue_outbound(mapping_name, frappe.get_doc("Sales Invoice", name), "on_submit")
	frappe.db.commit()


if __name__ == "__main__":
	main()
