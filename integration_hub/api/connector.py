"""Desk actions on a Connector."""

from __future__ import annotations

import frappe
from frappe import _

from integration_hub import connectors
from integration_hub.connectors import get_connector, record_circuit_outcome, secret_values
from integration_hub.engine.errors import IntegrationError
from integration_hub.engine.redact import redact_text
from integration_hub.outbound.dispatch import enqueue_delivery

MANAGER_ROLES = ("Integration Manager", "System Manager")


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


@frappe.whitelist()
def connector_health(connector: str) -> dict:
	"""The health panel of the Connector form: indicator and reason, last success and failure, circuit,
	rows waiting, the inbound webhook URL, and whether this user may pause or resume it."""
	frappe.has_permission("Connector", "read", connector, throw=True)
	summary = connectors.health_summary(connector)
	summary["can_manage"] = bool(set(frappe.get_roles()) & set(MANAGER_ROLES)) and frappe.has_permission(
		"Connector", "write", connector
	)
	return summary


@frappe.whitelist(methods=["POST"])
def pause_connector(connector: str) -> dict:
	"""Hold every delivery and pull of the connector until it is resumed; rows keep waiting, none is lost."""
	doc = managed_connector(connector)
	connectors.pause(doc.name)
	doc.add_comment("Info", _("paused deliveries and pulls"))
	return connectors.health_summary(doc.name)


@frappe.whitelist(methods=["POST"])
def resume_connector(connector: str) -> dict:
	"""Lift a pause, by hand or by the circuit breaker, and send the rows that waited."""
	doc = managed_connector(connector)
	connectors.resume(doc.name)
	doc.add_comment("Info", _("resumed deliveries and pulls"))
	frappe.db.after_commit.add(lambda: enqueue_delivery(doc.name))
	return connectors.health_summary(doc.name)


def managed_connector(connector: str):
	frappe.only_for(MANAGER_ROLES)
	frappe.has_permission("Connector", "write", connector, throw=True)
	return frappe.get_doc("Connector", connector)


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
