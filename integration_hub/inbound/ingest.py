"""The ingest API: REST consumers (an offline POS, a web shop, a branch site) post batches of records.

A call names an inbound mapping (trigger *API Ingest*) and carries an ``Idempotency-Key``. The key is
remembered per user with a hash of the body and the answer given: the same key with the same body gets the
same answer again, whatever happened since; the same key with another body is refused. Small batches are
staged and applied in the request, one transaction per record, and answered with one result per record;
larger ones are staged, answered 202 with a status address, and applied by workers. Either way every record
takes the inbound road of ``apply.py``, so a batch re-sent after a lost answer creates nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import frappe
from frappe import _

from integration_hub.engine.mapping import payload_hash
from integration_hub.inbound.apply import apply_rows, enqueue_apply, stage_records

SYNC_LIMIT = 100
"""Batches up to this many records are applied while the caller waits."""
MAX_RECORDS = 5000
STATUS_METHOD = "/api/method/integration_hub.api.ingest.status"
ACTIONS = {
	"Created": "created",
	"Updated": "updated",
	"Amended": "updated",
	"Cancelled": "cancelled",
	"Unchanged": "unchanged",
}


class IngestRefused(Exception):
	def __init__(self, status: int, message: str) -> None:
		super().__init__(message)
		self.status = status
		self.message = message


@dataclass
class IngestAnswer:
	status: int
	body: dict


def ingest(mapping_name: str | None, records, idempotency_key: str | None) -> IngestAnswer:
	try:
		mapping = ingest_mapping(mapping_name)
		records = checked_records(records)
		key = checked_key(idempotency_key)
		digest = payload_hash({"mapping": mapping.name, "records": records})
		request = claim_key(key, digest, mapping.name, len(records))
		if request.status == "Done":
			return IngestAnswer(request.http_status, json.loads(request.response))
		if request.replay and request.record_count > SYNC_LIMIT:
			return pending_answer(request.name)
		if request.replay:
			raise IngestRefused(
				429,
				_(
					"A batch with this Idempotency-Key is still being applied; send it again in a few seconds."
				),
			)
		return run_batch(mapping, records, request.name)
	except IngestRefused as refused:
		return IngestAnswer(refused.status, {"error": refused.message})


def ingest_mapping(name: str | None):
	if not name or not frappe.db.exists("Mapping", name):
		raise IngestRefused(404, _("There is no mapping named {0}.").format(name or ""))
	mapping = frappe.get_cached_doc("Mapping", name)
	if mapping.direction != "Inbound" or mapping.trigger != "API Ingest":
		raise IngestRefused(422, _("Mapping {0} does not take records through the ingest API.").format(name))
	if not mapping.enabled:
		raise IngestRefused(422, _("Mapping {0} is disabled.").format(name))
	return mapping


def checked_records(records) -> list:
	if isinstance(records, str):
		try:
			records = json.loads(records)
		except ValueError:
			raise IngestRefused(400, _("records is not valid JSON.")) from None
	if not isinstance(records, list) or not records:
		raise IngestRefused(422, _("records must be a non-empty list of objects."))
	if len(records) > MAX_RECORDS:
		raise IngestRefused(413, _("A batch may hold at most {0} records.").format(MAX_RECORDS))
	misfits = [position for position, record in enumerate(records, 1) if not isinstance(record, dict)]
	if misfits:
		raise IngestRefused(
			422,
			_("Every record must be an object; these are not: {0}").format(", ".join(map(str, misfits[:10]))),
		)
	return records


def checked_key(key: str | None) -> str:
	key = (key or "").strip()
	if not key or len(key) > 140:
		raise IngestRefused(
			400, _("Send an Idempotency-Key header (up to 140 characters) so a retried batch is recognised.")
		)
	return key


def claim_key(key: str, digest: str, mapping: str, count: int):
	"""This user's request row for ``key``: new (committed at once), or the earlier one for a replay."""
	user = frappe.session.user
	existing = frappe.db.get_value(
		"Ingest Request",
		{"user": user, "idempotency_key": key},
		["name", "status", "http_status", "response", "body_hash", "record_count"],
		as_dict=True,
	)
	if existing is None:
		request = frappe.get_doc(
			{
				"doctype": "Ingest Request",
				"idempotency_key": key,
				"user": user,
				"mapping": mapping,
				"status": "Processing",
				"record_count": count,
				"body_hash": digest,
			}
		)
		try:
			request.insert(ignore_permissions=True)
			frappe.db.commit()
			return frappe._dict(name=request.name, status="Processing", replay=False)
		except frappe.UniqueValidationError:
			frappe.db.rollback()
			return claim_key(key, digest, mapping, count)
	if existing.body_hash != digest:
		raise IngestRefused(
			409,
			_(
				"Idempotency-Key {0} was already used for a different batch; use a new key for new records."
			).format(key),
		)
	return frappe._dict(existing, replay=True)


def run_batch(mapping, records: list, request: str) -> IngestAnswer:
	staged = stage_records(mapping, records, "ingest", batch_id=request)
	frappe.db.commit()
	if len(records) > SYNC_LIMIT:
		frappe.db.after_commit.add(lambda: enqueue_apply(mapping.name))
		answer = pending_answer(request)
	else:
		apply_rows(staged.rows)
		answer = IngestAnswer(200, {"results": record_results(staged.entries)})
	frappe.db.set_value(
		"Ingest Request",
		request,
		{
			"status": "Done" if answer.status == 200 else "Processing",
			"http_status": answer.status,
			"response": json.dumps(answer.body, default=str),
		},
		update_modified=False,
	)
	frappe.db.commit()
	return answer


def pending_answer(request: str) -> IngestAnswer:
	return IngestAnswer(
		202, {"request": request, "status_url": f"{STATUS_METHOD}?request={request}", "status": "Processing"}
	)


def record_results(entries: list[dict]) -> list[dict]:
	"""One result per record, in the order sent: created / updated / unchanged / failed / queued."""
	rows = {
		row.name: row
		for row in frappe.get_all(
			"Sync Log",
			filters={"name": ("in", [entry["row"] for entry in entries if entry.get("row")])},
			fields=["name", "status", "inbound_action", "reference_name", "error"],
		)
	}
	return [result_of(entry, rows.get(entry.get("row"))) for entry in entries]


def result_of(entry: dict, row) -> dict:
	result = {"external_id": entry["external_id"]}
	if entry["outcome"] == "unchanged":
		return {**result, "status": "unchanged", "document": entry["document"]}
	if row is None:
		return {**result, "status": "queued"}
	if row.status in ("Success", "Skipped"):
		return {
			**result,
			"status": ACTIONS.get(row.inbound_action, "unchanged"),
			"document": row.reference_name,
		}
	if row.status in ("Dead", "Failed"):
		return {**result, "status": "failed", "message": row.error, "sync_log": row.name}
	return {**result, "status": "queued", "sync_log": row.name}


def request_status(request: str) -> IngestAnswer:
	"""Progress of a batch answered 202: counts by outcome, and the per-record results once all are done."""
	owner = frappe.db.get_value("Ingest Request", request, "user")
	if owner is None or (owner != frappe.session.user and "Integration Manager" not in frappe.get_roles()):
		return IngestAnswer(404, {"error": _("There is no ingest request {0}.").format(request)})
	rows = frappe.get_all(
		"Sync Log",
		filters={"batch_id": request},
		fields=["name", "external_id", "status", "inbound_action", "reference_name", "error"],
		order_by="creation asc, name asc",
	)
	waiting = sum(row.status in ("Queued", "Failed", "Running") for row in rows)
	body = {"request": request, "status": "Processing" if waiting else "Done", "waiting": waiting}
	if not waiting:
		body["results"] = [
			result_of({"external_id": row.external_id, "outcome": "staged"}, row) for row in rows
		]
	return IngestAnswer(200, body)
