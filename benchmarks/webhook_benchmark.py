"""Webhook benchmark and soak: acknowledge latency, events applied per second, and a mix of bad requests.

Run from a bench's ``sites`` folder with the bench's Python, on a disposable test site (bytecode on):

    cd ~/frappe-bench/sites
    env -u PYTHONDONTWRITEBYTECODE ../env/bin/python ../apps/integration_hub/benchmarks/webhook_benchmark.py \\
        --site test.integration-hub.localhost

The site is served by gunicorn on 127.0.0.1 for the run. It prints figures measured in one run, never asserts:

* acknowledge latency (p50/p99/max) of signed events through the webhook endpoint, next to Frappe's own REST
  insert of one row (``POST /api/resource/ToDo``) from the same client;
* events applied per second by one worker process (``apply_due_rows``) after they were acknowledged;
* a soak of requests mixing valid events with tampered, stale, replayed, unsigned, oversize and malformed
  ones (some malformed bodies sent as ``application/json``, which Frappe parses before any app code runs),
  printing accepted / duplicate / rejected / 5xx counts and the answers per kind.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import time
from collections import Counter

import frappe
from on_site import run_on_site

CONNECTOR = "IH Webhook Bench"
MAPPING = "IH Webhook Bench Customers"
SECRET = "whsec_" + base64.b64encode(b"ih-webhook-benchmark-secret-32by").decode()
ENDPOINT = f"/api/method/integration_hub.api.webhook.receive?connector={CONNECTOR.replace(' ', '%20')}"


def parse_args() -> argparse.Namespace:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--events", type=int, default=300)
	parser.add_argument("--soak", type=int, default=1200)
	return parser.parse_args()


def main() -> None:
	args = parse_args()
	run_on_site(args.site, lambda: run(args))


def run(args: argparse.Namespace) -> None:
	from integration_hub.tests.test_webhooks import customer_event, standard_headers, webhook_mapping
	from integration_hub.tests.utils import SiteServer, api_token, make_connector

	make_connector(
		CONNECTOR,
		"https://sender.example.com",
		signature_scheme="Standard Webhooks",
		webhook_secret=SECRET,
		webhook_rate_limit=1_000_000,
		webhook_max_body_kb=16,
	)
	webhook_mapping(CONNECTOR, MAPPING)
	token = api_token("Administrator")
	frappe.db.commit()
	run_id = f"{int(time.time())}"
	with SiteServer(workers=2) as site:
		warm_up(site, token)
		ours, plain = [], []
		for number in range(args.events):
			event = customer_event(f"bench_{run_id}_{number}", f"IH Bench Customer {run_id} {number}")
			body = json.dumps(event).encode()
			ours.append(
				timed(
					lambda: site.post(
						ENDPOINT, data=body, headers=standard_headers(SECRET, body, event["id"])
					)
				)
			)
			row = json.dumps({"description": f"Plain insert {run_id} {number}"})
			plain.append(
				timed(
					lambda: site.post(
						"/api/resource/ToDo",
						data=row,
						headers={"Authorization": token, "Content-Type": "application/json"},
					)
				)
			)
		print(f"acknowledge latency over {args.events} requests each (ms):")
		print(f"    webhook (verify + store):     {summary(ours)}")
		print(f"    Frappe REST insert of a row:  {summary(plain)}")
		print(f"    p50 ratio: {statistics.median(ours) / statistics.median(plain):.2f}x")
		measure_apply(args.events)
		soak(site, args.soak, run_id, customer_event, standard_headers)


def warm_up(site, token: str) -> None:
	for _ in range(5):
		site.post(ENDPOINT, data=b"{}", headers={"Content-Type": "text/plain"})
		site.get("/api/method/ping")


def timed(call) -> float:
	started = time.perf_counter()
	answer = call()
	elapsed = (time.perf_counter() - started) * 1000
	if answer.status_code >= 300:
		raise SystemExit(f"unexpected answer {answer.status_code}: {answer.text[:300]}")
	return elapsed


def summary(values: list[float]) -> str:
	ordered = sorted(values)
	p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
	return f"p50 {statistics.median(ordered):6.1f}  p99 {p99:6.1f}  max {ordered[-1]:6.1f}"


def measure_apply(expected: int) -> None:
	from integration_hub.inbound.apply import apply_due_rows

	frappe.db.rollback()
	started = time.perf_counter()
	counts = apply_due_rows(MAPPING)
	elapsed = time.perf_counter() - started
	applied = counts.created + counts.updated
	print(
		f"events applied by one worker: {applied} of {expected} in {elapsed:.1f} s = {applied / elapsed:.1f}/s"
	)


def soak(site, total: int, run_id: str, customer_event, standard_headers) -> None:
	"""Valid events (each sent twice) mixed with every kind of bad request, in a shuffled order."""
	requests = []
	for number in range(total // 8):
		event = customer_event(f"soak_{run_id}_{number}", f"IH Soak {run_id} {number}")
		body = json.dumps(event).encode()
		good = standard_headers(SECRET, body, event["id"])
		stale = standard_headers(SECRET, body, event["id"], timestamp=int(time.time()) - 3600)
		bad_signature = {**good, "webhook-signature": "v1," + base64.b64encode(random.randbytes(32)).decode()}
		big = json.dumps({**event, "pad": "x" * 20_000}).encode()
		malformed = body[:-3]
		requests += [
			("valid", body, good),
			("valid", body, good),
			("tampered body", body.replace(b"Soak", b"Evil"), good),
			("tampered signature", body, bad_signature),
			("stale or replayed", body, stale),
			("unsigned", body, {"Content-Type": "application/json"}),
			("oversize", big, standard_headers(SECRET, big, event["id"])),
			(
				"malformed JSON",
				malformed,
				{**standard_headers(SECRET, malformed, event["id"]), "Content-Type": "text/plain"},
			),
		]
		if number % 10 == 0:
			requests.append(
				("malformed, as JSON", malformed, standard_headers(SECRET, malformed, event["id"]))
			)
	random.shuffle(requests)
	outcome: Counter = Counter()
	by_kind: dict[str, Counter] = {}
	started = time.perf_counter()
	for kind, body, headers in requests:
		answer = site.post(ENDPOINT, data=body, headers=headers)
		message = (
			answer.json().get("message", {})
			if answer.headers.get("Content-Type", "").startswith("application/json")
			else {}
		)
		if answer.status_code >= 500:
			label = "5xx"
		elif answer.status_code == 200:
			label = "duplicate" if message.get("duplicate") else "accepted"
		else:
			label = "rejected"
		outcome[label] += 1
		by_kind.setdefault(kind, Counter())[f"{answer.status_code}"] += 1
	elapsed = time.perf_counter() - started
	print(
		f"soak: {len(requests)} requests in {elapsed:.0f} s — "
		+ ", ".join(f"{k} {outcome[k]}" for k in ("accepted", "duplicate", "rejected", "5xx"))
	)
	for kind, codes in sorted(by_kind.items()):
		print(
			f"    {kind:20s} " + ", ".join(f"HTTP {code}: {count}" for code, count in sorted(codes.items()))
		)


if __name__ == "__main__":
	main()
