"""Desk actions on a Connector."""

from __future__ import annotations

import frappe
from frappe import _

from integration_hub.connectors import get_connector, record_circuit_outcome, secret_values
from integration_hub.engine.errors import IntegrationError
from integration_hub.engine.redact import redact_text


@frappe.whitelist(methods=["POST"])
def test_connection(connector: str) -> dict:
	"""Call the remote once and say plainly whether it works. Secrets never reach the answer."""
	frappe.has_permission("Connector", "write", connector, throw=True)
	doc = frappe.get_doc("Connector", connector)
	try:
		result = probe(doc.name, doc.health_check_method or "GET", doc.health_check_path or "/")
	except IntegrationError as error:
		result = {"ok": False, "message": error.message}
	result["message"] = redact_text(result["message"], secret_values(doc.name))
	if result["ok"]:
		record_circuit_outcome(doc.name, success=True)
	return result


def probe(connector: str, method: str, path: str) -> dict:
	runtime = get_connector(connector)
	if runtime.protocol == "SOAP":
		operations = runtime.soap_client().list_operations()
		names = sorted({op["operation"] for op in operations})
		return {
			"ok": True,
			"message": _("WSDL loaded: {0} operations ({1})").format(len(names), ", ".join(names[:20])),
			"operations": operations,
		}
	response = runtime.rest_client().request(method, path)
	ok = response.outcome.kind == "success"
	if ok:
		message = _("The remote answered HTTP {0} in {1} ms").format(
			response.status_code, int(response.elapsed_ms)
		)
	else:
		message = _("The remote answered HTTP {0}: {1}").format(
			response.status_code, response.outcome.message or _("no reason given")
		)
	return {"ok": ok, "message": message, "status_code": response.status_code}
