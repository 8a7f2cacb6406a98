"""The guest endpoint outside systems sign and POST their events to, one address per connector."""

from __future__ import annotations

import json

import frappe
from frappe.auth import HTTPRequest

from integration_hub.inbound.receive import receive as receive_event


@frappe.whitelist(allow_guest=True, methods=["POST"])
def receive(**_body) -> dict:
	"""``POST /api/method/integration_hub.api.webhook.receive?connector=<name>``, answered in JSON.

	The connector comes from the query string only: the JSON body is the sender's, and Frappe hands its keys
	to this function as arguments, which are ignored.
	"""
	request = frappe.request
	answer = receive_event(request.args.get("connector"), request.headers, request.get_data())
	frappe.local.response.http_status_code = answer.status
	return answer.body


RECEIVE_PATH = "/api/method/integration_hub.api.webhook.receive"


def answer_unparsable_json(response, request) -> None:
	"""``after_request`` hook: a body sent as JSON that does not parse gets this endpoint's own 4xx.

	Frappe parses a JSON body before any app code runs and answers one that does not parse with a 500,
	which a sender takes for an outage and retries. Here it is the sender's bad input, so the request goes
	through the same checks as any other (connector, rate, size, signature) and gets their answer: 400 for a
	signed body that is not JSON, 401 when the signature does not verify. Nothing is stored either way. Frappe
	stopped setting the request up at the parse, so its remaining step (client address, Guest session) runs
	first, as it would have.
	"""
	if response is None or response.status_code != 500 or request.path != RECEIVE_PATH or not request.is_json:
		return
	body = request.get_data()
	try:
		json.loads(body)
	except ValueError:
		frappe.local.http_request = HTTPRequest()
		answer = receive_event(request.args.get("connector"), request.headers, body)
		frappe.db.commit()
		response.status_code = answer.status
		response.set_data(json.dumps({"message": answer.body}))
		response.mimetype = "application/json"
