"""Signed inbound webhooks: checked before anything is written, stored as inbound rows, answered fast.

The order of the checks is the point: the connector must exist and take webhooks, the client must be
within its rate, the body within its size, and the signature (with its timestamp window) must verify with
the connector's secret — or the previous one during a rotation — before the body is even parsed. A
rejection writes no row: it only moves the connector's rejection counter. A verified event is stored once
per connector (a database-unique event id), as a row of the inbound road (``apply.py``) that a worker
applies after the answer; the event type picks the mapping, and an event no mapping wants is kept as
Skipped so the sender stops retrying.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import frappe
from frappe import _
from frappe.rate_limiter import rate_limit
from frappe.utils import now_datetime

from integration_hub.connectors import connector_secrets
from integration_hub.engine.errors import IntegrationError, SignatureError
from integration_hub.engine.mapping import extract
from integration_hub.engine.signing import verify_inbound
from integration_hub.inbound.apply import enqueue_apply, insert_rows, stage_records, stored_payload
from integration_hub.logs import new_log_name

SCHEMES = {"Standard Webhooks": "standard_webhooks", "Stripe": "stripe", "HMAC Header": "hmac"}
DEFAULT_MAX_BODY_KB = 1024
DEFAULT_RATE_PER_MINUTE = 600
RATE_KEY = "integration_hub_webhook_connector"


class Rejected(Exception):
	"""A request refused before anything was stored: ``status`` and a reason that reveals no secret."""

	def __init__(self, status: int, reason: str) -> None:
		super().__init__(reason)
		self.status = status
		self.reason = reason


@dataclass
class Answer:
	status: int
	body: dict = field(default_factory=dict)


def receive(connector_name: str | None, headers, body: bytes) -> Answer:
	"""Check, store and answer one webhook delivery; never raises for bad input."""
	connector = None
	try:
		connector = webhook_connector(connector_name)
		within_rate(connector)
		check_size(connector, headers, body)
		event_id, event = verified_event(connector, headers, body)
		return store_event(connector, event_id, event)
	except Rejected as rejected:
		if connector is not None:
			count_rejection(connector.name, rejected.reason)
		return Answer(rejected.status, {"error": rejected.reason})


def webhook_connector(name: str | None):
	if not name or not frappe.db.exists("Connector", name):
		raise Rejected(404, _("There is no connector here with that name."))
	connector = frappe.get_cached_doc("Connector", name)
	if not connector.enabled:
		raise Rejected(404, _("There is no connector here with that name."))
	return connector


def within_rate(connector) -> None:
	"""Frappe's rate limiter, per connector and client address."""
	frappe.form_dict[RATE_KEY] = connector.name
	limited = rate_limit(
		key=RATE_KEY, limit=connector.webhook_rate_limit or DEFAULT_RATE_PER_MINUTE, seconds=60
	)
	try:
		limited(lambda: None)()
	except frappe.RateLimitExceededError:
		frappe.clear_messages()
		raise Rejected(429, _("Too many requests; slow down and retry later.")) from None


def check_size(connector, headers, body: bytes) -> None:
	limit = (connector.webhook_max_body_kb or DEFAULT_MAX_BODY_KB) * 1024
	declared = headers.get("Content-Length")
	if len(body) > limit or (declared and declared.isdigit() and int(declared) > limit):
		raise Rejected(
			413, _("The body is larger than this endpoint accepts ({0} KiB).").format(limit // 1024)
		)


def verified_event(connector, headers, body: bytes) -> tuple[str, dict]:
	scheme = SCHEMES.get(connector.signature_scheme or "")
	secrets = connector_secrets(connector)
	keys = [
		value for value in (secrets["webhook_secret"], secrets["previous_webhook_secret"]) if value.strip()
	]
	if scheme is None or not keys:
		raise Rejected(401, _("This connector accepts no webhooks until a signing secret is set."))
	try:
		verified = verify_inbound(
			scheme,
			keys,
			headers,
			body,
			tolerance=connector.timestamp_tolerance or 300,
			header_name=connector.signature_header or None,
			algorithm=connector.signature_algorithm or None,
			encoding=connector.signature_encoding or None,
			prefix=connector.signature_prefix or None,
			id_header=connector.webhook_id_header or None,
		)
	except SignatureError as error:
		raise Rejected(401, signature_refusal(error)) from None
	except IntegrationError:
		raise Rejected(401, _("The signature could not be checked with this connector's settings.")) from None
	try:
		event = json.loads(body)
	except ValueError:
		raise Rejected(400, _("The body is not valid JSON.")) from None
	if not isinstance(event, dict):
		raise Rejected(400, _("The body must be a JSON object."))
	event_id = verified.event_id if scheme != "hmac" or connector.webhook_id_header else None
	event_id = event_id or extract_text(event, connector.webhook_event_id_path or "id")
	if not event_id:
		raise Rejected(400, _("The event carries no id, so a repeated delivery could not be recognised."))
	return str(event_id)[:140], event


def signature_refusal(error: SignatureError) -> str:
	if error.code == SignatureError.STALE_TIMESTAMP:
		return _("The signature's timestamp is outside the accepted window.")
	if error.code == SignatureError.MISSING_HEADER:
		return _("The request is not signed.")
	return _("The signature does not verify.")


def extract_text(event: dict, path: str) -> str | None:
	try:
		value = extract(event, path)
	except IntegrationError:
		return None
	return str(value) if value not in (None, "") and not isinstance(value, dict | list) else None


def store_event(connector, event_id: str, event: dict) -> Answer:
	"""One row per record of the event (Skipped when no mapping wants it), the event id unique per connector."""
	if frappe.db.exists(
		"Sync Log", {"connector": connector.name, "event_id": ("in", [event_id, f"{event_id}:1"])}
	):
		return Answer(200, {"received": True, "duplicate": True})
	event_type = extract_text(event, connector.webhook_event_type_path or "type") or ""
	mapping = mapping_for(connector.name, event_type)
	frappe.db.savepoint("integration_hub_webhook")
	try:
		if mapping is None:
			store_unwanted(connector, event_id, event_type, event)
			status = "skipped"
		else:
			records = records_of(mapping, event)
			ids = [event_id] if len(records) == 1 else [f"{event_id}:{n}" for n in range(1, len(records) + 1)]
			stage_records(mapping, records, f"webhook:{event_type}"[:140], event_ids=ids)
			frappe.db.after_commit.add(lambda: enqueue_apply(mapping.name))
			status = "queued"
	except Exception as error:
		if not frappe.db.is_unique_key_violation(error):
			raise
		frappe.db.rollback(save_point="integration_hub_webhook")
		return Answer(200, {"received": True, "duplicate": True})
	return Answer(200, {"received": True, "status": status})


def mapping_for(connector: str, event_type: str):
	"""The enabled webhook mapping of the connector that lists the type, else one that takes ``*``."""
	rows = frappe.get_all(
		"Mapping",
		filters={"connector": connector, "direction": "Inbound", "trigger": "Webhook", "enabled": 1},
		fields=["name", "webhook_event_type"],
		order_by="name asc",
	)
	fallback = None
	for row in rows:
		types = {part.strip() for part in (row.webhook_event_type or "").split(",") if part.strip()}
		if event_type in types:
			return frappe.get_cached_doc("Mapping", row.name)
		if "*" in types and fallback is None:
			fallback = row.name
	return frappe.get_cached_doc("Mapping", fallback) if fallback else None


def records_of(mapping, event: dict) -> list:
	"""The record(s) the mapping reads from the event: its Records Path (e.g. data.object), else the event."""
	found = extract(event, mapping.records_path) if mapping.records_path else event
	if isinstance(found, list):
		return found
	return [found if found is not None else event]


def store_unwanted(connector, event_id: str, event_type: str, event: dict) -> None:
	insert_rows(
		[
			{
				"name": new_log_name(),
				"status": "Skipped",
				"direction": "Inbound",
				"connector": connector.name,
				"event": f"webhook:{event_type}"[:140],
				"event_id": event_id,
				"attempts": 0,
				"payload": json.dumps(stored_payload(event, connector_secret_values(connector)), indent=1),
				"error": _("No enabled inbound mapping of {0} takes events of type {1}").format(
					connector.name, event_type or _("(none)")
				),
			}
		],
		now_datetime(),
	)


def connector_secret_values(connector) -> list[str]:
	return [value for value in connector_secrets(connector).values() if value]


def count_rejection(connector: str, reason: str) -> None:
	"""Move the connector's rejection counter; no row per bad request."""
	frappe.db.sql(
		"""
		update `tabConnector`
		set webhook_rejections = ifnull(webhook_rejections, 0) + 1,
			webhook_last_rejection = %(reason)s, webhook_last_rejection_at = %(now)s
		where name = %(name)s
		""",
		{"name": connector, "reason": reason[:500], "now": now_datetime()},
	)
