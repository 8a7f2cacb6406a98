"""Outbound sync end to end: real ERPNext documents, the real outbox and worker, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, get_datetime, now_datetime
from frappe.utils.background_jobs import get_queue, get_queues_timeout, get_redis_conn
from rq.job import JobStatus
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration_hub.api.sync_log import retry
from integration_hub.bindings import get_remote_id
from integration_hub.connectors import get_connector
from integration_hub.jobs import QUEUE_NAME, job_queue, slot_job, slot_key
from integration_hub.mappings import clear_outbound_index, get_outbound_index
from integration_hub.outbound import outbox
from integration_hub.outbound.dispatch import DELIVERY_JOB, delivery_slot, enqueue_delivery
from integration_hub.outbound.outbox import deliver, release_expired_leases, sweep
from integration_hub.tests.utils import (
	RecordingServer,
	default_company,
	free_port,
	make_connector,
	make_customer,
	make_item,
	make_mapping_from_template,
	make_rows_due,
	make_sales_invoice,
	make_warehouse,
	run_worker_process,
	sync_logs_for,
)


def accounting_responder(request):
	if request.method == "POST" and request.path == "/invoices":
		return 201, {}, {"id": "ACC-" + request.json()["invoice_number"]}
	if request.path.endswith("/void"):
		return 200, {}, {"voided": True}
	return 404, {}, {"error": "no such endpoint"}


def queued_delivery_jobs(connector: str) -> list:
	"""The delivery jobs of ``connector`` waiting in any of the app's possible queues, oldest first."""
	return [
		job
		for queue_name in ("default", QUEUE_NAME)
		if queue_name in get_queues_timeout()
		for job in get_queue(queue_name).get_jobs()
		if job.kwargs.get("method") == DELIVERY_JOB
		and job.kwargs.get("kwargs", {}).get("connector") == connector
	]


def discard_delivery_jobs(connector: str) -> None:
	"""Forget the connector's queued delivery jobs and its delivery slot (tests run no RQ worker)."""
	for job in queued_delivery_jobs(connector):
		job.delete()
	get_redis_conn().delete(slot_key(delivery_slot(connector)))


def run_like_a_worker(job) -> None:
	"""Run a queued delivery job in this process the way an RQ worker runs it: STARTED while its body runs."""
	get_queue(job.origin.split(":")[-1]).remove(job)
	job.started_at = datetime.now(timezone.utc).replace(tzinfo=None)
	job.set_status(JobStatus.STARTED)
	job.save()
	try:
		frappe.get_attr(job.kwargs["method"])(**job.kwargs["kwargs"])
	finally:
		job.set_status(JobStatus.FINISHED)


class OutboundTestCase(FrappeTestCase):
	"""Each test commits (the outbox only acts after commit), so each cleans up what it made."""

	connector_name = "IH Outbound"

	def setUp(self):
		frappe.db.commit()
		self.servers: list[RecordingServer] = []

	def tearDown(self):
		for server in self.servers:
			server.stop()
		frappe.db.rollback()
		for mapping in frappe.get_all(
			"Mapping", filters={"connector": ("like", "IH Outbound%")}, pluck="name"
		):
			frappe.db.set_value("Mapping", mapping, "enabled", 0)
		frappe.db.commit()
		clear_outbound_index()

	def start_server(self, responder=accounting_responder, port: int = 0) -> RecordingServer:
		server = RecordingServer(responder=responder, port=port)
		self.servers.append(server)
		return server

	def setup_invoice_sync(self, url: str, suffix: str, **connector_values) -> tuple[str, str]:
		connector = make_connector(f"{self.connector_name} {suffix}", url, **connector_values)
		mapping = make_mapping_from_template("sales_invoice_to_accounting", connector)
		frappe.db.commit()
		discard_delivery_jobs(connector)
		return connector, mapping

	def submit_invoice(self, **kwargs):
		invoice = make_sales_invoice(**kwargs)
		frappe.db.commit()
		return invoice

	def log_for(self, invoice, event="on_submit"):
		rows = [row for row in sync_logs_for("Sales Invoice", invoice.name) if row.event == event]
		self.assertEqual(len(rows), 1, rows)
		return rows[0]


class TestOutboundInvoice(OutboundTestCase):
	def test_submit_sends_one_mapped_request_and_cancel_voids_it(self):
		server = self.start_server()
		connector, _mapping = self.setup_invoice_sync(server.url, "Invoice")
		invoice = self.submit_invoice(
			items=(("IH-TEST-ITEM", 2, 50.0), ("IH-TEST-ITEM-2", 1, 25.5)), tax_rate=10
		)

		self.assertEqual(len(queued_delivery_jobs(connector)), 1, "delivery was not enqueued after commit")
		self.assertEqual(self.log_for(invoice).status, "Queued")

		deliver(connector)

		self.assertEqual(len(server.requests), 1)
		request = server.requests[0]
		body = request.json()
		self.assertEqual((request.method, request.path), ("POST", "/invoices"))
		self.assertEqual(body["invoice_number"], invoice.name)
		self.assertEqual(
			[(line["sku"], line["quantity"], line["unit_price"]) for line in body["lines"]],
			[("IH-TEST-ITEM", 2.0, 50.0), ("IH-TEST-ITEM-2", 1.0, 25.5)],
		)
		self.assertEqual(body["tax_lines"][0]["amount"], 12.55)
		self.assertEqual(body["totals"]["grand"], invoice.grand_total)
		self.assertEqual(body["totals"]["grand_minor"], round(invoice.grand_total * 100))
		log = self.log_for(invoice)
		self.assertEqual(request.headers["Idempotency-Key"], log.idempotency_key)
		self.assertEqual(
			(log.status, log.external_id, log.http_status), ("Success", f"ACC-{invoice.name}", 201)
		)

		invoice.reload()
		invoice.cancel()
		frappe.db.commit()
		deliver(connector)

		self.assertEqual(len(server.requests), 2)
		void = server.requests[1]
		self.assertEqual((void.method, void.path), ("POST", f"/invoices/ACC-{invoice.name}/void"))
		self.assertEqual(self.log_for(invoice, "on_cancel").status, "Success")

	def test_a_void_answered_with_another_id_keeps_the_invoice_bound_to_its_own(self):
		def credit_note_on_void(request):
			if request.path.endswith("/void"):
				return 201, {}, {"id": "CN-" + request.path.split("/")[2], "type": "credit_note"}
			return accounting_responder(request)

		server = self.start_server(credit_note_on_void)
		connector, _mapping = self.setup_invoice_sync(server.url, "Void Id")
		invoice = self.submit_invoice()
		deliver(connector)
		self.assertEqual(
			get_remote_id(connector, "Sales Invoice", invoice.name, "invoice"), f"ACC-{invoice.name}"
		)

		invoice.reload()
		invoice.cancel()
		frappe.db.commit()
		deliver(connector)

		void = server.requests[-1]
		self.assertEqual(void.path, f"/invoices/ACC-{invoice.name}/void")
		log = self.log_for(invoice, "on_cancel")
		self.assertEqual(log.status, "Success")
		self.assertIn(f"CN-ACC-{invoice.name}", log.response)
		self.assertEqual(log.external_id, f"ACC-{invoice.name}")
		self.assertEqual(
			get_remote_id(connector, "Sales Invoice", invoice.name, "invoice"), f"ACC-{invoice.name}"
		)

	def test_an_operation_whose_response_replaces_the_binding_rebinds(self):
		def reissue(request):
			if request.method == "PUT":
				return 200, {}, {"id": "ACC-REISSUED-" + request.path.split("/")[2]}
			return accounting_responder(request)

		server = self.start_server(reissue)
		connector = make_connector(f"{self.connector_name} Reissue", server.url)
		mapping = frappe.get_doc(
			"Mapping", make_mapping_from_template("sales_invoice_to_accounting", connector)
		)
		mapping.append(
			"events",
			{
				"event": "on_update_after_submit",
				"http_method": "PUT",
				"path": "/invoices/{{ remote_id }}",
				"send_body": 1,
				"response_replaces_binding": 1,
			},
		)
		mapping.save(ignore_permissions=True)
		frappe.db.commit()
		invoice = self.submit_invoice()
		deliver(connector)
		invoice.reload()
		invoice.db_set("remarks", "reissued")
		invoice.run_method("on_update_after_submit")
		frappe.db.commit()
		deliver(connector)

		self.assertEqual(server.requests[-1].path, f"/invoices/ACC-{invoice.name}")
		self.assertEqual(
			get_remote_id(connector, "Sales Invoice", invoice.name, "invoice"),
			f"ACC-REISSUED-ACC-{invoice.name}",
		)

	def test_secrets_never_reach_the_sync_log(self):
		secret = "outbound-secret-token-7c1d"

		def echo_auth(request):
			if request.headers.get("Authorization") != f"Bearer {secret}":
				return 401, {}, {"error": "bad token"}
			return (
				400,
				{},
				{"error": f"rejected request with Authorization {request.headers['Authorization']}"},
			)

		server = self.start_server(echo_auth)
		connector, _mapping = self.setup_invoice_sync(
			server.url, "Secret", auth_type="Bearer Token", bearer_token=secret
		)
		invoice = self.submit_invoice()
		deliver(connector)
		self.assertEqual(len(server.requests), 1)
		log = self.log_for(invoice)
		self.assertEqual(log.status, "Dead")
		self.assertIn("rejected request", log.error)
		request = json.loads(log.request)
		self.assertEqual(request["headers"]["Authorization"], "********")
		self.assertEqual(request["headers"]["Idempotency-Key"], log.idempotency_key)
		stored = json.dumps(
			frappe.get_all("Sync Log", filters={"connector": connector}, fields=["*"]), default=str
		)
		self.assertNotIn(secret, stored)
		self.assertNotIn(secret, json.dumps(frappe.get_all("Error Log", fields=["*"]), default=str))

	def test_remote_down_at_submit_then_delivered_once(self):
		port = free_port()
		connector, _mapping = self.setup_invoice_sync(f"http://127.0.0.1:{port}", "Down")
		invoice = self.submit_invoice()
		self.assertEqual(invoice.docstatus, 1)

		deliver(connector)
		log = self.log_for(invoice)
		self.assertEqual((log.status, log.attempts), ("Failed", 1))
		self.assertGreater(get_datetime(log.next_attempt_at), now_datetime())

		server = self.start_server(port=port)
		frappe.db.set_value("Sync Log", log.name, "next_attempt_at", add_to_date(now_datetime(), seconds=60))
		frappe.db.commit()
		deliver(connector)
		self.assertEqual(len(server.requests), 0, "a row was sent before its next attempt time")
		make_rows_due(connector)
		deliver(connector)
		deliver(connector)
		self.assertEqual(len(server.requests), 1)
		self.assertEqual(self.log_for(invoice).status, "Success")

	def test_gone_endpoint_disables_the_mapping(self):
		server = self.start_server(lambda request: (410, {}, {"error": "this API version was retired"}))
		connector, mapping = self.setup_invoice_sync(server.url, "Gone")
		invoice = self.submit_invoice()
		deliver(connector)
		log = self.log_for(invoice)
		self.assertEqual((log.status, log.http_status), ("Dead", 410))
		self.assertIn("disabled", log.error)
		self.assertIn("this API version was retired", log.error)
		self.assertEqual(frappe.db.get_value("Mapping", mapping, "enabled"), 0)
		self.assertNotIn(mapping, get_outbound_index().get("Sales Invoice", {}).get("on_submit", []))
		later = self.submit_invoice()
		self.assertEqual(sync_logs_for("Sales Invoice", later.name), [])

	def test_a_lost_queue_entry_never_blocks_delivery(self):
		server = self.start_server()
		connector, _mapping = self.setup_invoice_sync(server.url, "Lost Job")
		self.submit_invoice()
		job = slot_job(delivery_slot(connector))
		get_queue("default").remove(job)
		self.assertIsNone(job.get_position())
		self.assertEqual(job.get_status(), "queued", "the job record outlives its queue entry")

		sweep()
		self.assertEqual(
			len(queued_delivery_jobs(connector)), 1, "the sweep did not enqueue the delivery again"
		)
		self.assertTrue(enqueue_delivery(connector))
		self.assertEqual(len(queued_delivery_jobs(connector)), 1)

	def test_rolled_back_submit_leaves_no_row_and_sends_nothing(self):
		server = self.start_server()
		connector, _mapping = self.setup_invoice_sync(server.url, "Rollback")
		invoice = make_sales_invoice()
		self.assertEqual(len(sync_logs_for("Sales Invoice", invoice.name)), 1)
		frappe.db.rollback()
		self.assertEqual(sync_logs_for("Sales Invoice", invoice.name), [])
		self.assertFalse(frappe.db.exists("Sales Invoice", invoice.name))
		deliver(connector)
		self.assertEqual(server.requests, [])

	def test_retry_after_is_honoured(self):
		server = self.start_server(lambda request: (429, {"Retry-After": "120"}, {"error": "slow down"}))
		connector, _mapping = self.setup_invoice_sync(server.url, "429")
		invoice = self.submit_invoice()
		before = now_datetime()
		deliver(connector)
		log = self.log_for(invoice)
		self.assertEqual(log.status, "Failed")
		wait = (get_datetime(log.next_attempt_at) - before).total_seconds()
		self.assertGreaterEqual(wait, 118)
		self.assertLessEqual(wait, 125)

	def test_server_errors_retried_with_backoff_then_dead(self):
		server = self.start_server(lambda request: (503, {}, {"error": "maintenance window"}))
		connector, _mapping = self.setup_invoice_sync(
			server.url, "503", max_attempts=3, circuit_failure_threshold=10
		)
		invoice = self.submit_invoice()
		waits = []
		for attempt in range(1, 4):
			started = now_datetime()
			deliver(connector)
			log = self.log_for(invoice)
			self.assertEqual(log.attempts, attempt)
			if attempt < 3:
				self.assertEqual(log.status, "Failed")
				waits.append((get_datetime(log.next_attempt_at) - started).total_seconds())
				make_rows_due(connector)
		self.assertEqual(len(server.requests), 3)
		self.assertEqual(log.status, "Dead")
		self.assertIn("3 attempts", log.error)
		self.assertIn("maintenance window", log.error)
		for attempt, wait in enumerate(waits, start=1):
			self.assertLessEqual(wait, min(5, 1 * 2 ** (attempt - 1)) + 1)
		self.assertEqual(len({r.headers["Idempotency-Key"] for r in server.requests}), 1)

	def test_client_error_is_dead_at_once_and_retry_from_desk_sends_again(self):
		answers = {"status": 400}

		def responder(request):
			if answers["status"] == 400:
				return 400, {}, {"error": "customer IH Test Customer is unknown here"}
			return accounting_responder(request)

		server = self.start_server(responder)
		connector, _mapping = self.setup_invoice_sync(server.url, "400")
		invoice = self.submit_invoice()
		deliver(connector)
		log = self.log_for(invoice)
		self.assertEqual((log.status, log.attempts, log.http_status), ("Dead", 1, 400))
		self.assertIn("customer IH Test Customer is unknown here", log.error)

		answers["status"] = 201
		retry([log.name])
		frappe.db.commit()
		self.assertEqual(self.log_for(invoice).status, "Queued")
		deliver(connector)
		self.assertEqual(len(server.requests), 2)
		self.assertEqual(self.log_for(invoice).status, "Success")
		self.assertEqual(
			server.requests[0].headers["Idempotency-Key"], server.requests[1].headers["Idempotency-Key"]
		)


SIGNING_SECRET = "whsec_" + base64.b64encode(b"outbound-signing-key-current-01").decode()
PREVIOUS_SIGNING_SECRET = "whsec_" + base64.b64encode(b"outbound-signing-key-previous-0").decode()


def verifies_with(secret: str, request) -> bool:
	"""Whether the standardwebhooks library, as a receiver would use it, accepts the request."""
	try:
		Webhook(secret).verify(request.body, request.headers, json_parse=False)
	except WebhookVerificationError:
		return False
	return True


class TestOutboundSigning(OutboundTestCase):
	def test_deliveries_carry_standard_webhooks_signatures_a_receiver_verifies(self):
		answers = ["retry", "accept"]

		def verifying_receiver(request):
			if not verifies_with(SIGNING_SECRET, request):
				return 401, {}, {"error": "bad signature"}
			if answers.pop(0) == "retry":
				return 503, {}, {"error": "busy"}
			return accounting_responder(request)

		server = self.start_server(verifying_receiver)
		connector, _mapping = self.setup_invoice_sync(
			server.url,
			"Signed",
			outbound_signing_scheme="Standard Webhooks",
			outbound_signing_secret=SIGNING_SECRET,
			outbound_signing_previous_secret=PREVIOUS_SIGNING_SECRET,
		)
		invoice = self.submit_invoice()
		deliver(connector)
		make_rows_due(connector)
		deliver(connector)

		log = self.log_for(invoice)
		self.assertEqual((log.status, log.attempts), ("Success", 2))
		self.assertEqual(len(server.requests), 2)
		for request in server.requests:
			self.assertEqual(request.headers["Webhook-Id"], log.idempotency_key)
			self.assertTrue(verifies_with(PREVIOUS_SIGNING_SECRET, request), "rotation overlap broken")
			self.assertLess(abs(int(request.headers["Webhook-Timestamp"]) - time.time()), 60)
		stored = json.loads(log.request)["headers"]
		self.assertEqual(stored["webhook-signature"], "********")
		self.assertEqual(stored["webhook-id"], log.idempotency_key)
		signatures = [request.headers["Webhook-Signature"] for request in server.requests]
		everything_stored = json.dumps(
			[
				frappe.get_all("Sync Log", filters={"connector": connector}, fields=["*"]),
				frappe.get_all("Error Log", fields=["*"]),
				frappe.db.get_value("Connector", connector, "*"),
			],
			default=str,
		)
		for value in [SIGNING_SECRET, PREVIOUS_SIGNING_SECRET, *signatures]:
			self.assertNotIn(value.removeprefix("whsec_"), everything_stored)
		self.assertNotIn(SIGNING_SECRET, repr(get_connector(connector)))

	def test_hmac_header_signs_the_exact_body_sent(self):
		secret = "hmac-signing-secret-4a7e"

		def receiver(request):
			digest = hmac.new(secret.encode(), request.body, hashlib.sha512).hexdigest()
			if not hmac.compare_digest(request.headers.get("X-Acme-Signature", ""), f"sha512={digest}"):
				return 401, {}, {"error": "bad signature"}
			return accounting_responder(request)

		server = self.start_server(receiver)
		connector, _mapping = self.setup_invoice_sync(
			server.url,
			"HMAC Signed",
			outbound_signing_scheme="HMAC Header",
			outbound_signing_secret=secret,
			outbound_signing_header="X-Acme-Signature",
			outbound_signing_algorithm="sha512",
			outbound_signing_prefix="sha512=",
		)
		invoice = self.submit_invoice()
		deliver(connector)
		log = self.log_for(invoice)
		self.assertEqual(log.status, "Success", log.error)
		self.assertEqual(json.loads(log.request)["headers"]["X-Acme-Signature"], "********")
		self.assertNotIn(
			secret,
			json.dumps(
				frappe.get_all("Sync Log", filters={"connector": connector}, fields=["*"]), default=str
			),
		)

	def test_a_secret_that_cannot_sign_is_refused_on_save(self):
		for values, message in [
			({"outbound_signing_scheme": "Standard Webhooks"}, "needs a Signing Secret"),
			(
				{
					"outbound_signing_scheme": "Standard Webhooks",
					"outbound_signing_secret": "not-a-whsec-key!",
				},
				"base64",
			),
			(
				{
					"outbound_signing_scheme": "HMAC Header",
					"outbound_signing_secret": "s",
					"outbound_signing_header": "X Bad Header",
				},
				"not a valid HTTP header name",
			),
		]:
			with self.subTest(values=values), self.assertRaisesRegex(frappe.ValidationError, message):
				make_connector(f"{self.connector_name} Bad Signing", "http://127.0.0.1:9", **values)


class TestOutboundOrdering(OutboundTestCase):
	def test_rows_of_one_document_go_out_in_order(self):
		server = self.start_server()
		connector, _mapping = self.setup_invoice_sync(server.url, "Order")
		invoice = self.submit_invoice()
		invoice.reload()
		invoice.cancel()
		frappe.db.commit()
		deliver(connector)
		self.assertEqual(
			[(r.method, r.path) for r in server.requests],
			[("POST", "/invoices"), ("POST", f"/invoices/ACC-{invoice.name}/void")],
		)

	def test_an_older_version_never_overwrites_a_newer_one(self):
		server = self.start_server(lambda request: (200, {}, {"id": "CRM-1"}))
		connector = make_connector(f"{self.connector_name} CRM", server.url)
		make_mapping_from_template("customer_to_crm", connector)
		frappe.db.commit()
		customer = frappe.get_doc("Customer", make_customer("IH Ordering Customer"))
		for territory_name in ("First Version", "Second Version", "Third Version"):
			customer.customer_details = territory_name
			customer.save(ignore_permissions=True)
			frappe.db.commit()
		deliver(connector)
		self.assertEqual(len(server.requests), 1, [r.json() for r in server.requests])
		rows = sync_logs_for("Customer", customer.name)
		self.assertEqual(rows[-1].status, "Success")
		self.assertTrue(all(row.status == "Skipped" and "Superseded" in row.error for row in rows[:-1]), rows)
		self.assertEqual(server.requests[0].json()["external_id"], customer.name)

		customer.customer_name = "IH Ordering Customer Renamed"
		customer.save(ignore_permissions=True)
		frappe.db.commit()
		deliver(connector)
		self.assertEqual(server.requests[-1].json()["name"], "IH Ordering Customer Renamed")


class TestOutboundCircuitBreaker(OutboundTestCase):
	def test_repeated_failures_pause_the_connector_then_one_probe_reopens_it(self):
		answers = {"status": 503}

		def responder(request):
			if answers["status"] == 503:
				return 503, {}, {"error": "down for maintenance"}
			return accounting_responder(request)

		server = self.start_server(responder)
		connector, _mapping = self.setup_invoice_sync(
			server.url, "Circuit", circuit_failure_threshold=2, circuit_cooldown_seconds=600, max_attempts=10
		)
		invoices = [make_sales_invoice() for _ in range(4)]
		frappe.db.commit()

		deliver(connector)
		self.assertEqual(len(server.requests), 2, "the circuit did not open after two failures")
		state = frappe.db.get_value(
			"Connector", connector, ["circuit_state", "paused_until", "health_status"], as_dict=True
		)
		self.assertEqual((state.circuit_state, state.health_status), ("Open", "Failing"))
		self.assertGreater(get_datetime(state.paused_until), now_datetime())
		waiting = [self.log_for(invoice) for invoice in invoices[2:]]
		self.assertEqual([(row.status, row.attempts) for row in waiting], [("Queued", 0), ("Queued", 0)])

		make_rows_due(connector)
		deliver(connector)
		self.assertEqual(len(server.requests), 2, "rows were sent while the connector was paused")

		frappe.db.set_value("Connector", connector, "paused_until", add_to_date(now_datetime(), seconds=-1))
		make_rows_due(connector)
		deliver(connector)
		self.assertEqual(len(server.requests), 3, "after the pause exactly one probe should go out")
		paused_again = frappe.db.get_value("Connector", connector, "paused_until")
		self.assertGreater(get_datetime(paused_again), add_to_date(now_datetime(), seconds=500))

		answers["status"] = 201
		frappe.db.set_value("Connector", connector, "paused_until", add_to_date(now_datetime(), seconds=-1))
		make_rows_due(connector)
		deliver(connector)
		self.assertEqual(len(server.requests), 7)
		self.assertEqual({self.log_for(invoice).status for invoice in invoices}, {"Success"})
		state = frappe.db.get_value("Connector", connector, ["circuit_state", "health_status"], as_dict=True)
		self.assertEqual((state.circuit_state, state.health_status), ("Closed", "Healthy"))


class TestOutboundWorkers(OutboundTestCase):
	def test_worker_killed_between_sending_and_recording(self):
		release = threading.Event()
		first = threading.Event()

		def hold_first_request(request):
			if not first.is_set():
				first.set()
				release.wait(60)
			return accounting_responder(request)

		server = self.start_server(hold_first_request)
		connector, _mapping = self.setup_invoice_sync(server.url, "Crash")
		invoice = self.submit_invoice()

		worker = run_worker_process(connector)
		self.assertTrue(first.wait(60), "the worker process never sent the request")
		os.kill(worker.pid, signal.SIGKILL)
		worker.wait(30)
		release.set()
		frappe.db.rollback()
		log = self.log_for(invoice)
		self.assertEqual(log.status, "Running")

		frappe.db.set_value("Sync Log", log.name, "lease_expires_at", "2000-01-01 00:00:00")
		frappe.db.commit()
		self.assertEqual(release_expired_leases(), 1)
		deliver(connector)

		keys = [request.headers["Idempotency-Key"] for request in server.requests]
		self.assertEqual(keys, [log.idempotency_key, log.idempotency_key])
		self.assertEqual(self.log_for(invoice).status, "Success")

	def test_two_workers_never_send_a_row_twice(self):
		def slow(request):
			time.sleep(0.02)
			return accounting_responder(request)

		server = self.start_server(slow)
		connector, _mapping = self.setup_invoice_sync(server.url, "Workers")
		invoices = [make_sales_invoice() for _ in range(24)]
		frappe.db.commit()

		workers = [run_worker_process(connector) for _ in range(2)]
		outputs = [worker.communicate(timeout=300) for worker in workers]
		for worker, (_out, err) in zip(workers, outputs, strict=True):
			self.assertEqual(worker.returncode, 0, err)
		sent_by_worker = [int(out.strip().splitlines()[-1]) for out, _err in outputs]

		keys = Counter(request.headers["Idempotency-Key"] for request in server.requests)
		self.assertEqual(len(keys), len(invoices))
		self.assertEqual(max(keys.values()), 1, keys.most_common(3))
		self.assertEqual(sum(sent_by_worker), len(invoices))
		statuses = {self.log_for(invoice).status for invoice in invoices}
		self.assertEqual(statuses, {"Success"})


class TestOutboundJobs(OutboundTestCase):
	def start_invoice_sync(self, suffix: str) -> tuple[RecordingServer, str]:
		server = self.start_server()
		connector, _mapping = self.setup_invoice_sync(server.url, suffix)
		return server, connector

	def run_job_committing_an_invoice_on_empty_claim(self, connector: str, empty_claim: int) -> list:
		"""Run the connector's queued job; on its ``empty_claim``-th empty claim, submit and commit an invoice."""
		(job,) = queued_delivery_jobs(connector)
		empty_claims, submitted = [], []
		real_claim = outbox.claim_due_rows

		def claim_and_commit_an_invoice(*args, **kwargs):
			rows = real_claim(*args, **kwargs)
			if not rows:
				empty_claims.append(1)
				if len(empty_claims) == empty_claim:
					submitted.append(self.submit_invoice())
			return rows

		with patch.object(outbox, "claim_due_rows", claim_and_commit_an_invoice):
			run_like_a_worker(job)
		return submitted

	def test_a_row_committed_after_the_jobs_last_claim_is_not_left_for_the_sweep(self):
		server, connector = self.start_invoice_sync("Wind Down")
		first = self.submit_invoice()

		(late,) = self.run_job_committing_an_invoice_on_empty_claim(connector, empty_claim=1)

		for job in queued_delivery_jobs(connector):
			run_like_a_worker(job)
		self.assertEqual(self.log_for(first).status, "Success")
		self.assertEqual(self.log_for(late).status, "Success", "the late row was left for the minute sweep")
		self.assertEqual(
			sorted(r.json()["invoice_number"] for r in server.requests), sorted([first.name, late.name])
		)

	def test_a_row_committed_after_the_job_released_its_slot_gets_a_job_of_its_own(self):
		server, connector = self.start_invoice_sync("Released")
		self.submit_invoice()

		(late,) = self.run_job_committing_an_invoice_on_empty_claim(connector, empty_claim=2)

		self.assertEqual(len(queued_delivery_jobs(connector)), 1)
		run_like_a_worker(queued_delivery_jobs(connector)[0])
		self.assertEqual(self.log_for(late).status, "Success")
		self.assertEqual(len(server.requests), 2)

	def test_many_commits_while_a_job_is_queued_enqueue_one_job(self):
		_server, connector = self.start_invoice_sync("One Job")
		for _ in range(3):
			self.submit_invoice()
		self.assertEqual(len(queued_delivery_jobs(connector)), 1)
		run_like_a_worker(queued_delivery_jobs(connector)[0])
		self.assertEqual(queued_delivery_jobs(connector), [])

	def test_deliveries_run_on_the_apps_queue_when_the_bench_has_workers_for_it(self):
		_server, connector = self.start_invoice_sync("Queue")
		self.addCleanup(get_queues_timeout.cache_clear)
		with patch.dict(frappe.local.conf, {"workers": {QUEUE_NAME: {"timeout": 600}}}):
			get_queues_timeout.cache_clear()
			self.assertEqual(job_queue(), QUEUE_NAME)
			self.assertTrue(enqueue_delivery(connector))
			(job,) = queued_delivery_jobs(connector)
			self.assertEqual(job.origin, get_queue(QUEUE_NAME).name)
			discard_delivery_jobs(connector)

		get_queues_timeout.cache_clear()
		self.assertEqual(job_queue(), "default")
		self.assertTrue(enqueue_delivery(connector))
		(job,) = queued_delivery_jobs(connector)
		self.assertEqual(job.origin, get_queue("default").name)
		discard_delivery_jobs(connector)


class TestOutboundGroups(OutboundTestCase):
	def test_rows_sent_one_by_one_get_their_own_outcomes_written_together(self):
		invoices = []

		def responder(request):
			number = request.json()["invoice_number"]
			if number == invoices[1].name:
				return 422, {}, {"error": "tax id missing"}
			if number == invoices[2].name:
				return 503, {}, {"error": "try later"}
			if number == invoices[3].name:
				return 201, {}, {"id": f"ACC-{invoices[0].name}"}
			return accounting_responder(request)

		server = self.start_server(responder)
		connector, _mapping = self.setup_invoice_sync(server.url, "Group", circuit_failure_threshold=10)
		invoices.extend(make_sales_invoice() for _ in range(5))
		frappe.db.commit()
		deliver(connector)

		self.assertEqual(len(server.requests), 5)
		logs = [self.log_for(invoice) for invoice in invoices]
		self.assertEqual([log.status for log in logs], ["Success", "Dead", "Failed", "Dead", "Success"])
		self.assertIn("tax id missing", logs[1].error)
		self.assertIn("already belongs to", logs[3].error)
		for invoice, log in zip(invoices, logs, strict=True):
			expected = f"ACC-{invoice.name}" if log.status == "Success" else None
			self.assertEqual(get_remote_id(connector, "Sales Invoice", invoice.name, "invoice"), expected)
			if log.status == "Success":
				self.assertEqual((log.external_id, log.http_status), (expected, 201))
				self.assertEqual(json.loads(log.request)["body"]["invoice_number"], invoice.name)
		health = frappe.db.get_value("Connector", connector, ["consecutive_failures", "health_status"])
		self.assertEqual(health, (0, "Healthy"), "the success after the failure was not recorded")


class TestOutboundBatch(OutboundTestCase):
	def test_one_request_carries_many_rows_and_each_row_gets_its_outcome(self):
		def batch_responder(request):
			records = request.json()["records"]
			results = [
				{"error": "duplicate invoice number"}
				if index == 1
				else {"id": f"B-{record['invoice_number']}"}
				for index, record in enumerate(records)
			]
			return 200, {}, {"results": results}

		server = self.start_server(batch_responder)
		connector = make_connector(f"{self.connector_name} Batch", server.url)
		make_mapping_from_template(
			"sales_invoice_to_accounting",
			connector,
			batch_size=10,
			batch_path="/invoices/batch",
			batch_results_path="results",
		)
		frappe.db.commit()
		invoices = [make_sales_invoice() for _ in range(3)]
		frappe.db.commit()
		deliver(connector)

		self.assertEqual([r.path for r in server.requests], ["/invoices/batch"])
		sent = [record["invoice_number"] for record in server.requests[0].json()["records"]]
		self.assertEqual(sent, [invoice.name for invoice in invoices])
		logs = [self.log_for(invoice) for invoice in invoices]
		self.assertEqual([log.status for log in logs], ["Success", "Dead", "Success"])
		self.assertIn("duplicate invoice number", logs[1].error)
		for invoice, log in zip(invoices, logs, strict=True):
			expected = None if log.status == "Dead" else f"B-{invoice.name}"
			self.assertEqual(log.external_id, expected)
			bound = get_remote_id(connector, "Sales Invoice", invoice.name, "invoice")
			self.assertEqual(bound, expected)
			self.assertEqual(log.batch_id, logs[0].batch_id)


class TestOutboundStock(OutboundTestCase):
	def test_stock_entry_becomes_one_batched_inventory_update(self):
		server = self.start_server(lambda request: (200, {}, {"accepted": True}))
		connector = make_connector(f"{self.connector_name} Stock", server.url)
		make_mapping_from_template("stock_levels_to_storefront", connector)
		company = default_company()
		source = make_warehouse("IH Source", company)
		target = make_warehouse("IH Target", company)
		items = [make_item("IH-STOCK-A", is_stock_item=1), make_item("IH-STOCK-B", is_stock_item=1)]
		receipt = frappe.get_doc(
			{
				"doctype": "Stock Entry",
				"stock_entry_type": "Material Receipt",
				"company": company,
				"items": [
					{"item_code": item, "qty": 10, "t_warehouse": source, "basic_rate": 5} for item in items
				],
			}
		)
		receipt.insert(ignore_permissions=True)
		receipt.submit()
		frappe.db.commit()
		deliver(connector)
		server.requests.clear()
		before = {
			(item, warehouse): frappe.db.get_value(
				"Bin", {"item_code": item, "warehouse": warehouse}, "actual_qty"
			)
			or 0
			for item in items
			for warehouse in (source, target)
		}

		transfer = frappe.get_doc(
			{
				"doctype": "Stock Entry",
				"stock_entry_type": "Material Transfer",
				"company": company,
				"items": [
					{"item_code": items[0], "qty": 3, "s_warehouse": source, "t_warehouse": target},
					{"item_code": items[1], "qty": 4, "s_warehouse": source, "t_warehouse": target},
				],
			}
		)
		transfer.insert(ignore_permissions=True)
		transfer.submit()
		frappe.db.commit()
		deliver(connector)

		self.assertEqual(len(server.requests), 1, [r.path for r in server.requests])
		request = server.requests[0]
		self.assertEqual(request.path, "/inventory/batch")
		sent = {(row["sku"], row["location"]): row["quantity"] for row in request.json()["items"]}
		expected = {
			(item, warehouse): frappe.db.get_value(
				"Bin", {"item_code": item, "warehouse": warehouse}, "actual_qty"
			)
			for item in items
			for warehouse in (source, target)
		}
		self.assertEqual(sent, expected)
		moved = {items[0]: 3, items[1]: 4}
		for item, qty in moved.items():
			self.assertEqual(sent[(item, source)], before[(item, source)] - qty)
			self.assertEqual(sent[(item, target)], before[(item, target)] + qty)
		self.assertEqual(len(request.json()["items"]), 4)
