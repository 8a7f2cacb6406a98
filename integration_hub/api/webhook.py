"""The guest endpoint outside systems sign and POST their events to, one address per connector."""

from __future__ import annotations

import frappe

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
