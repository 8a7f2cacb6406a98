"""Signed webhooks through Frappe's WSGI app served on 127.0.0.1: verified first, stored once, never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import frappe
from frappe.tests.utils import FrappeTestCase
from standardwebhooks.webhooks import Webhook

from integration_hub.bindings import find_document
from integration_hub.inbound.apply import apply_due_rows
from integration_hub.tests.utils import (
	ServedSiteTestCase,
	make_connector,
	make_sales_invoice,
	mapping_from_template,
)

ENDPOINT = "/api/method/integration_hub.api.webhook.receive?connector={}"
STANDARD = "IH Webhook Standard"
STRIPE = "IH Webhook Stripe"
UNSIGNED = "IH Webhook Unsigned"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"ih-standard-webhooks-secret-32by").decode()
NEXT_STANDARD_SECRET = "whsec_" + base64.b64encode(b"ih-rotated-webhooks-secret-32byt").decode()
STRIPE_SECRET = "whsec_ih_stripe_endpoint_secret_7f3a9c"


def customer_event(event_id: str, name: str) -> dict:
	return {
		"id": event_id,
		"type": "customer.created",
		"created": int(time.time()),
		"data": {"object": {"id": f"cus_{event_id}", "name": name, "email": f"{event_id}@example.com"}},
	}


def standard_headers(secret: str, body: bytes, msg_id: str, timestamp: int | None = None) -> dict:
	moment = datetime.fromtimestamp(timestamp or time.time(), tz=timezone.utc)
	signature = Webhook(secret).sign(msg_id, moment, body.decode())
	return {
		"webhook-id": msg_id,
		"webhook-timestamp": str(int(moment.timestamp())),
		"webhook-signature": signature,
		"Content-Type": "application/json",
	}


def stripe_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict:
	"""Stripe's published scheme: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
	timestamp = timestamp or int(time.time())
	digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
	return {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}


def webhook_mapping(connector: str, name: str) -> str:
	if frappe.db.exists("Mapping", name):
		frappe.delete_doc("Mapping", name, force=True, ignore_permissions=True)
	return (
		frappe.get_doc(
			{
				"doctype": "Mapping",
				"mapping_name": name,
				"direction": "Inbound",
				"connector": connector,
				"enabled": 1,
				"trigger": "Webhook",
				"webhook_event_type": "customer.created",
				"target_doctype": "Customer",
				"external_id_path": "id",
				"records_path": "data.object",
				"remote_object_type": "contact",
				"fields": [
					{"target": "customer_name", "source": "name", "source_type": "Path", "required": 1}
				],
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


class TestWebhooks(ServedSiteTestCase):
	@classmethod
	def prepare_site(cls):
		make_connector(
			STANDARD,
			"https://sender.example.com",
			signature_scheme="Standard Webhooks",
			webhook_secret=STANDARD_SECRET,
			webhook_max_body_kb=8,
		)
		make_connector(
			STRIPE, "https://stripe.example.com", signature_scheme="Stripe", webhook_secret=STRIPE_SECRET
		)
		make_connector(UNSIGNED, "https://nosecret.example.com", signature_scheme="None")
		webhook_mapping(STANDARD, "IH Webhook Customers")
		webhook_mapping(STRIPE, "IH Stripe Customers")

	def rows(self, connector: str) -> int:
		frappe.db.rollback()
		return frappe.db.count("Sync Log", {"connector": connector})

	def post(self, connector: str, body: bytes, headers: dict):
		return self.site.post(ENDPOINT.format(connector), data=body, headers=headers)

	def test_standard_webhooks_event_delivered_three_times_is_applied_once(self):
		event = customer_event("msg_std_once", "IH Webhook Customer One")
		body = json.dumps(event).encode()
		before = self.rows(STANDARD)
		answers = [
			self.post(STANDARD, body, standard_headers(STANDARD_SECRET, body, "msg_std_once"))
			for _ in range(3)
		]
		self.assertEqual([a.status_code for a in answers], [200, 200, 200])
		self.assertEqual(answers[0].json()["message"], {"received": True, "status": "queued"})
		self.assertTrue(all(a.json()["message"].get("duplicate") for a in answers[1:]))
		self.assertEqual(self.rows(STANDARD) - before, 1)
		apply_due_rows("IH Webhook Customers")
		name = find_document(STANDARD, "Customer", "cus_msg_std_once", "contact")
		self.assertEqual(frappe.db.get_value("Customer", name, "customer_name"), "IH Webhook Customer One")

	def test_stripe_event_delivered_three_times_is_applied_once(self):
		event = customer_event("evt_stripe_once", "IH Stripe Customer One")
		body = json.dumps(event).encode()
		before = self.rows(STRIPE)
		codes = [self.post(STRIPE, body, stripe_headers(STRIPE_SECRET, body)).status_code for _ in range(3)]
		self.assertEqual(codes, [200, 200, 200])
		self.assertEqual(self.rows(STRIPE) - before, 1)
		apply_due_rows("IH Stripe Customers")
		self.assertTrue(find_document(STRIPE, "Customer", "cus_evt_stripe_once", "contact"))

	def test_a_rotation_accepts_the_old_and_the_new_secret_during_the_overlap(self):
		connector = frappe.get_doc("Connector", STANDARD)
		connector.previous_webhook_secret = STANDARD_SECRET
		connector.webhook_secret = NEXT_STANDARD_SECRET
		connector.save(ignore_permissions=True)
		frappe.db.commit()
		try:
			for secret, msg_id in ((STANDARD_SECRET, "msg_old_key"), (NEXT_STANDARD_SECRET, "msg_new_key")):
				body = json.dumps(customer_event(msg_id, f"IH Rotation {msg_id}")).encode()
				answer = self.post(STANDARD, body, standard_headers(secret, body, msg_id))
				self.assertEqual(answer.status_code, 200, answer.text)
			body = json.dumps(customer_event("msg_stranger", "IH Stranger")).encode()
			stranger = "whsec_" + base64.b64encode(b"someone-else-entirely-32-bytes!!").decode()
			self.assertEqual(
				self.post(STANDARD, body, standard_headers(stranger, body, "msg_stranger")).status_code, 401
			)
		finally:
			connector.reload()
			connector.webhook_secret = STANDARD_SECRET
			connector.previous_webhook_secret = ""
			connector.save(ignore_permissions=True)
			frappe.db.commit()

	def test_bad_requests_get_their_4xx_and_write_nothing(self):
		event = customer_event("msg_bad", "IH Never Created")
		body = json.dumps(event).encode()
		good = standard_headers(STANDARD_SECRET, body, "msg_bad")
		tampered_signature = {**good, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
		old = int(time.time()) - 3600
		stale = standard_headers(STANDARD_SECRET, body, "msg_bad", timestamp=old)
		malformed = b'{"id": "msg_bad", "type": "customer.created",'
		oversize = json.dumps({**event, "padding": "x" * 9000}).encode()
		cases = {
			"tampered body": (STANDARD, body.replace(b"Never", b"Evil"), good, 401),
			"tampered signature": (STANDARD, body, tampered_signature, 401),
			"tampered timestamp": (
				STANDARD,
				body,
				{**good, "webhook-timestamp": str(int(time.time()) - 5)},
				401,
			),
			"stale": (STANDARD, body, stale, 401),
			"replayed an hour later": (STANDARD, body, stale, 401),
			"unsigned": (STANDARD, body, {"Content-Type": "application/json"}, 401),
			"oversize": (STANDARD, oversize, standard_headers(STANDARD_SECRET, oversize, "msg_bad"), 413),
			"malformed JSON sent as JSON": (
				STANDARD,
				malformed,
				standard_headers(STANDARD_SECRET, malformed, "msg_bad"),
				400,
			),
			"malformed JSON, unsigned": (STANDARD, malformed, {"Content-Type": "application/json"}, 401),
			"malformed JSON": (
				STANDARD,
				malformed,
				{**standard_headers(STANDARD_SECRET, malformed, "msg_bad"), "Content-Type": "text/plain"},
				400,
			),
			"wrong connector": ("IH No Such Connector", body, good, 404),
			"no secret configured": (UNSIGNED, body, good, 401),
		}
		rejections_before = frappe.db.get_value("Connector", STANDARD, "webhook_rejections") or 0
		rows_before = frappe.db.count("Sync Log", {"connector": ("in", [STANDARD, UNSIGNED])})
		for label, (connector, payload, headers, expected) in cases.items():
			answer = self.post(connector, payload, headers)
			self.assertEqual(answer.status_code, expected, f"{label}: {answer.text}")
			self.assertIn("error", answer.json()["message"], label)
			self.assertNotIn(STANDARD_SECRET, answer.text, label)
		self.assertEqual(
			self.rows(STANDARD) + frappe.db.count("Sync Log", {"connector": UNSIGNED}), rows_before
		)
		self.assertFalse(frappe.db.exists("Customer", {"customer_name": "IH Never Created"}))
		counted = frappe.db.get_value("Connector", STANDARD, ["webhook_rejections", "webhook_last_rejection"])
		self.assertEqual(counted[0] - rejections_before, 10)
		self.assertIn("JSON", counted[1])

	def test_a_client_over_the_connector_rate_gets_429(self):
		limited = make_connector(
			f"IH Webhook Limited {int(time.time())}",
			"https://limited.example.com",
			signature_scheme="Standard Webhooks",
			webhook_secret=STANDARD_SECRET,
			webhook_rate_limit=3,
		)
		frappe.db.commit()
		body = json.dumps(customer_event("msg_limited", "IH Limited")).encode()
		codes = [
			self.post(limited.replace(" ", "%20"), body, {"Content-Type": "application/json"}).status_code
			for _ in range(5)
		]
		self.assertEqual(codes, [401, 401, 401, 429, 429])
		self.assertEqual(self.rows(limited), 0)

	def test_an_event_no_mapping_wants_is_acknowledged_and_kept_as_skipped(self):
		event = {**customer_event("msg_unwanted", "IH Unwanted"), "type": "invoice.finalized"}
		body = json.dumps(event).encode()
		answer = self.post(STANDARD, body, standard_headers(STANDARD_SECRET, body, "msg_unwanted"))
		self.assertEqual((answer.status_code, answer.json()["message"]["status"]), (200, "skipped"))
		frappe.db.rollback()
		row = frappe.db.get_value(
			"Sync Log", {"connector": STANDARD, "event_id": "msg_unwanted"}, ["status", "error"]
		)
		self.assertEqual(row[0], "Skipped")
		self.assertIn("invoice.finalized", row[1])


PAYMENTS = "IH Stripe Payments"


def payment_event(event_id: str, kind: str, invoice: str, cents: int, currency: str) -> dict:
	key = "amount_received" if kind == "payment_intent.succeeded" else "amount_refunded"
	return {
		"id": event_id,
		"object": "event",
		"type": kind,
		"created": int(time.time()),
		"data": {
			"object": {
				"id": f"pi_{event_id}",
				"object": "payment_intent",
				key: cents,
				"currency": currency.lower(),
				"created": int(time.time()),
				"metadata": {"invoice": invoice},
			}
		},
	}


class TestPaymentEvents(ServedSiteTestCase):
	@classmethod
	def prepare_site(cls):
		make_connector(
			PAYMENTS,
			"https://api.stripe.example.com",
			signature_scheme="Stripe",
			webhook_secret=STRIPE_SECRET,
		)
		mapping_from_template("payment_events_to_payment_entry", PAYMENTS, "IH Stripe Payments In", enabled=1)
		mapping_from_template("payment_refunds_to_dead_row", PAYMENTS, "IH Stripe Refunds In", enabled=1)

	def deliver(self, event: dict):
		body = json.dumps(event).encode()
		answer = self.site.post(
			ENDPOINT.format(PAYMENTS), data=body, headers=stripe_headers(STRIPE_SECRET, body)
		)
		self.assertEqual(answer.status_code, 200, answer.text)
		frappe.db.rollback()
		apply_due_rows("IH Stripe Payments In")
		apply_due_rows("IH Stripe Refunds In")
		return answer

	def invoice_state(self, name: str):
		frappe.db.rollback()
		return frappe.db.get_value("Sales Invoice", name, ["status", "outstanding_amount"], as_dict=True)

	def test_a_payment_event_pays_the_invoice_once(self):
		invoice = make_sales_invoice()
		frappe.db.commit()
		cents = round(invoice.grand_total * 100)
		event = payment_event(
			f"evt_full_{invoice.name}", "payment_intent.succeeded", invoice.name, cents, invoice.currency
		)
		self.deliver(event)
		state = self.invoice_state(invoice.name)
		self.assertEqual((state.status, state.outstanding_amount), ("Paid", 0))
		payment = find_document(PAYMENTS, "Payment Entry", f"pi_{event['id']}", "payment")
		entry = frappe.db.get_value(
			"Payment Entry", payment, ["docstatus", "paid_amount", "reference_no"], as_dict=True
		)
		self.assertEqual(
			(entry.docstatus, entry.paid_amount, entry.reference_no),
			(1, invoice.grand_total, f"pi_{event['id']}"),
		)

		duplicate = self.deliver(event)
		self.assertTrue(duplicate.json()["message"].get("duplicate"))
		references = frappe.get_all(
			"Payment Entry Reference",
			filters={"reference_name": invoice.name, "docstatus": 1},
			pluck="parent",
		)
		self.assertEqual(references, [payment])

	def test_a_smaller_payment_leaves_the_invoice_partly_paid_and_a_foreign_currency_is_refused(self):
		invoice = make_sales_invoice()
		frappe.db.commit()
		half = round(invoice.grand_total * 50)
		self.deliver(
			payment_event(
				f"evt_half_{invoice.name}", "payment_intent.succeeded", invoice.name, half, invoice.currency
			)
		)
		state = self.invoice_state(invoice.name)
		self.assertEqual(state.status, "Partly Paid")
		self.assertAlmostEqual(state.outstanding_amount, invoice.grand_total - half / 100, places=2)

		foreign = "EUR" if invoice.currency != "EUR" else "GBP"
		self.deliver(
			payment_event(f"evt_eur_{invoice.name}", "payment_intent.succeeded", invoice.name, 100, foreign)
		)
		row = frappe.db.get_value(
			"Sync Log", {"event_id": f"evt_eur_{invoice.name}"}, ["status", "error"], as_dict=True
		)
		self.assertEqual(row.status, "Dead")
		self.assertIn(f"is in {invoice.currency}", row.error)
		self.assertEqual(self.invoice_state(invoice.name).status, "Partly Paid")

	def test_a_refund_is_left_dead_with_what_to_do(self):
		invoice = make_sales_invoice()
		frappe.db.commit()
		self.deliver(
			payment_event(
				f"evt_refund_{invoice.name}", "charge.refunded", invoice.name, 500, invoice.currency
			)
		)
		row = frappe.db.get_value(
			"Sync Log", {"event_id": f"evt_refund_{invoice.name}"}, ["status", "error"], as_dict=True
		)
		self.assertEqual(row.status, "Dead")
		self.assertIn("Credit Note", row.error)
		self.assertIn(invoice.name, row.error)
