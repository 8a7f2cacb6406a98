"""Desk actions on a Mapping: preview the exact request, and create mappings from ready templates."""

from __future__ import annotations

import json
from pathlib import Path

import frappe
import requests
from frappe import _
from frappe.utils import cint

from integration_hub.bindings import find_document, get_remote_id
from integration_hub.connectors import get_connector, secret_values
from integration_hub.engine.errors import IntegrationError
from integration_hub.engine.links import resolve_links
from integration_hub.engine.mapping import render_path
from integration_hub.engine.redact import redact_text
from integration_hub.inbound.apply import external_id_of, inbound_plan, link_lookup
from integration_hub.inbound.pull import enqueue_pull, fresh_since, reset_position, source_pages
from integration_hub.mappings import compile_mapping_doc, row_errors

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "mapping_templates"


@frappe.whitelist()
def preview(mapping: str, docname: str, event: str | None = None) -> dict:
	"""The request the mapping would send for one document, secrets redacted; nothing is sent."""
	frappe.has_permission("Mapping", "read", mapping, throw=True)
	doc = frappe.get_doc("Mapping", mapping)
	if doc.direction != "Outbound":
		frappe.throw(_("Preview is for outbound mappings."))
	frappe.has_permission(doc.source_doctype, "read", docname, throw=True)
	operation = next((row for row in doc.events if row.event == event), None) or (doc.events or [None])[0]
	if not operation:
		frappe.throw(_("Mapping {0} has no events.").format(mapping))
	source = frappe.get_doc(doc.source_doctype, docname).as_dict(convert_dates_to_str=True)
	remote_id = get_remote_id(doc.connector, doc.source_doctype, docname, doc.remote_object_type)
	context = {
		"event": operation.event,
		"idempotency_key": "ih-preview",
		"remote_id": remote_id,
		"connector": doc.connector,
	}
	try:
		compiled, _condition = compile_mapping_doc(doc)
		payload = compiled.apply(source, context) if operation.send_body else None
		runtime = get_connector(doc.connector)
		if runtime.protocol == "SOAP":
			return {
				"operation": operation.soap_operation,
				"envelope": runtime.soap_client().prepare_preview(operation.soap_operation, payload or {}),
			}
		path = render_path(operation.path or "", {"doc": source, "remote_id": remote_id, "context": context})
		return runtime.rest_client().prepare_preview(
			operation.http_method, path, json=payload, idempotency_key=context["idempotency_key"]
		)
	except IntegrationError as error:
		preview_failed(error.message)
	except (requests.RequestException, ValueError, TypeError) as error:
		preview_failed(redact_text(f"{type(error).__name__}: {error}", secret_values(doc.connector)))


def preview_failed(reason: str) -> None:
	"""A clear message instead of a server error (whose Error Log could hold the connector's secrets)."""
	frappe.throw(_("The request cannot be built: {0}").format(reason), title=_("Preview Failed"))


@frappe.whitelist()
def list_templates() -> list[dict]:
	frappe.has_permission("Mapping", "create", throw=True)
	return [
		{"name": path.stem, "title": data["title"], "description": data.get("description", "")}
		for path, data in sorted((p, load_template(p.stem)) for p in TEMPLATE_DIR.glob("*.json"))
	]


def load_template(name: str) -> dict:
	path = TEMPLATE_DIR / f"{name}.json"
	if not name.replace("_", "").isalnum() or not path.is_file():
		frappe.throw(_("There is no mapping template named {0}.").format(frappe.bold(name)))
	return json.loads(path.read_text())


@frappe.whitelist(methods=["POST"])
def create_from_template(
	template: str, connector: str, mapping_name: str | None = None, enabled: int | str = 1
) -> str:
	"""Create an editable Mapping from a bundled template for the given connector; the guided setup creates it
	disabled and enables it once the admin has seen a preview."""
	frappe.has_permission("Mapping", "create", throw=True)
	data = load_template(template)
	mapping = frappe.get_doc(
		{
			"doctype": "Mapping",
			**data["mapping"],
			"mapping_name": mapping_name or f"{data['title']} - {connector}",
			"connector": connector,
			"template": template,
			"enabled": cint(enabled),
		}
	)
	mapping.insert()
	return mapping.name


@frappe.whitelist(methods=["POST"])
def check_rows(doc) -> dict:
	"""Every wrong field row of a Mapping as the form holds it (saved or not), each with its own message."""
	mapping = frappe.get_doc(frappe.parse_json(doc))
	if mapping.doctype != "Mapping":
		frappe.throw(_("Only Mapping rows can be checked."))
	frappe.has_permission("Mapping", "create" if mapping.is_new() else "write", throw=True)
	return {str(idx): message for idx, message in row_errors(mapping).items()}


PREVIEW_RECORDS = 10


def inbound_mapping_for_action(mapping: str):
	"""The scheduled inbound Mapping a Pull Now / Reset Cursor acts on, after the role and permission checks."""
	frappe.only_for(("Integration Manager", "System Manager"))
	frappe.has_permission("Mapping", "write", mapping, throw=True)
	doc = frappe.get_doc("Mapping", mapping)
	if doc.direction != "Inbound" or doc.trigger != "Schedule":
		frappe.throw(_("Mapping {0} is not a scheduled inbound mapping.").format(frappe.bold(mapping)))
	return doc


@frappe.whitelist(methods=["POST"])
def pull_now(mapping: str) -> dict:
	"""Start a pull in a worker; progress arrives as realtime events on the Mapping form."""
	doc = inbound_mapping_for_action(mapping)
	if not frappe.db.get_value("Connector", doc.connector, "enabled"):
		frappe.throw(_("Connector {0} is disabled.").format(frappe.bold(doc.connector)))
	return {"queued": enqueue_pull(doc.name)}


@frappe.whitelist(methods=["POST"])
def reset_cursor(mapping: str) -> dict:
	"""Forget where pulls stopped: the next run reads the remote list from its start."""
	doc = inbound_mapping_for_action(mapping)
	reset_position(doc.name)
	return {"reset": True}


@frappe.whitelist()
def preview_inbound(mapping: str, sample: str | None = None) -> list[dict]:
	"""What the first records of a remote page (or a pasted sample) would become; nothing is written."""
	frappe.has_permission("Mapping", "read", mapping, throw=True)
	doc = frappe.get_doc("Mapping", mapping)
	if doc.direction != "Inbound":
		frappe.throw(_("Inbound preview is for inbound mappings."))
	records = sample_records(sample) if sample else first_page_records(doc)
	try:
		return [preview_record(doc, record) for record in records[:PREVIEW_RECORDS]]
	finally:
		frappe.db.rollback()


def sample_records(sample: str) -> list:
	try:
		data = json.loads(sample)
	except ValueError as error:
		frappe.throw(_("The sample is not valid JSON: {0}").format(error), title=_("Preview Failed"))
	return data if isinstance(data, list) else [data]


def first_page_records(doc) -> list:
	try:
		runtime = get_connector(doc.connector)
		page = next(iter(source_pages(runtime, doc, fresh_since(doc))), None)
	except IntegrationError as error:
		frappe.throw(_("The remote could not be read: {0}").format(error.message), title=_("Preview Failed"))
	return page.records if page else []


def preview_record(doc, record) -> dict:
	"""One record's outcome: the document values with links resolved, and whether it would create or update."""
	plan = inbound_plan(doc.name)
	result = {"record": record, "external_id": external_id_of(doc, record)}
	try:
		compiled, _condition = compile_mapping_doc(doc)
		values = compiled.apply(record, {**plan.context, "external_id": result["external_id"]})
		resolve_links(values, plan.links, link_lookup(doc.connector))
	except IntegrationError as error:
		return {**result, "action": "error", "error": error.message}
	existing = result["external_id"] and find_document(
		doc.connector, doc.target_doctype, result["external_id"], doc.remote_object_type
	)
	return {
		**result,
		"action": "update" if existing else "create",
		"document": existing or None,
		"values": values,
	}
