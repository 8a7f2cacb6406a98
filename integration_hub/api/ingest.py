"""The ingest REST API for consumers with a Frappe API key (``Authorization: token key:secret``)."""

from __future__ import annotations

import frappe

from integration_hub.inbound.ingest import IngestAnswer, ingest, request_status

INGEST_ROLES = ("Integration Manager", "Integration Ingest", "System Manager")


@frappe.whitelist(methods=["POST"])
def records(mapping: str | None = None, records=None, **_ignored) -> dict:
	"""``POST /api/method/integration_hub.api.ingest.records`` with ``{"mapping": ..., "records": [...]}``
	and an ``Idempotency-Key`` header; see the README for the answers."""
	frappe.only_for(INGEST_ROLES)
	return answered(ingest(mapping, records, frappe.get_request_header("Idempotency-Key")))


@frappe.whitelist(methods=["GET"])
def status(request: str) -> dict:
	"""Progress and, once done, per-record results of a batch that was answered 202."""
	frappe.only_for(INGEST_ROLES)
	return answered(request_status(request))


def answered(answer: IngestAnswer) -> dict:
	frappe.local.response.http_status_code = answer.status
	return answer.body
