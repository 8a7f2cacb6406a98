"""Delivers claimed outbound Sync Log rows: map the document, send it, record what happened."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import frappe
from frappe import _
from frappe.query_builder import Case
from frappe.utils import now_datetime

from integration_hub.bindings import find_document, get_bindings, save_binding
from integration_hub.connectors import ConnectorRuntime, get_connector, paused_until, record_circuit_outcome
from integration_hub.documents import load_documents
from integration_hub.engine.errors import (
	ConfigurationError,
	GoneError,
	IntegrationError,
	MappingError,
	TransportError,
)
from integration_hub.engine.mapping import extract, payload_hash, render_path
from integration_hub.engine.policy import next_retry_delay
from integration_hub.mappings import clear_outbound_index, compile_mapping_doc, tables_read_by

RESPONSE_EXCERPT = 2000
INTEGER_FIELDS = frozenset({"http_status", "duration_ms"})


class SkipRow(Exception):
	"""The row needs no request (document gone, payload unchanged); ``args[0]`` says why."""


@dataclass
class OutboundCall:
	row: Any
	method: str
	path: str
	soap_operation: str
	payload: Any
	idempotency_key: str
	remote_id: str | None
	payload_hash: str | None
	binding: Any = None
	response_replaces_binding: bool = False
	request_log: dict = field(default_factory=dict)
	targeted: bool = False
	"""The row names the remote object it acts on (a duplicate to void), which is not the document's own:
	the binding is neither used nor changed."""


def deliver_rows(rows: list) -> None:
	"""Deliver one group of claimed rows of one mapping: a request per row, or one batch request for them all.

	Rows without a mapping carry their request ready-made (``dispatch.queue_message``): the stored body is
	POSTed to the stored path through the same loop (retries, circuit breaker) as mapped rows."""
	mapping = frappe.get_cached_doc("Mapping", rows[0].mapping) if rows[0].mapping else None
	try:
		runtime = get_connector(mapping.connector if mapping else rows[0].connector)
	except (ConfigurationError, frappe.DoesNotExistError) as error:
		for row in rows:
			finish(row, "Dead", error=_("Connector cannot be used: {0}").format(error_text(error)))
		return
	calls = prepare_calls(rows, mapping, runtime) if mapping else [message_call(row) for row in rows]
	if not calls:
		return
	if hold_while_paused([call.row for call in calls], runtime.name):
		return
	if mapping and (mapping.batch_size or 1) > 1 and runtime.protocol == "REST":
		send_batch(calls, mapping, runtime)
	else:
		send_each(calls, mapping, runtime)


def prepare_calls(rows: list, mapping, runtime: ConnectorRuntime) -> list[OutboundCall]:
	"""The requests of a mapping's rows; rows that cannot be sent end Skipped or Dead here."""
	documents = load_group_documents(rows, mapping)
	bindings = get_bindings(
		runtime.name,
		rows[0].reference_doctype,
		[row.reference_name for row in rows],
		mapping.remote_object_type,
	)
	calls = []
	for row in rows:
		try:
			calls.append(prepare_call(row, mapping, runtime, documents, bindings.get(row.reference_name)))
		except SkipRow as reason:
			finish(row, "Skipped", error=str(reason), commit=False)
		except IntegrationError as error:
			finish(row, "Dead", error=error_text(error), commit=False)
	frappe.db.commit()
	return calls


def message_call(row) -> OutboundCall:
	message = json.loads(row.payload or "{}")
	return OutboundCall(
		row=row,
		method="POST",
		path=message.get("path") or "",
		soap_operation="",
		payload=message.get("body"),
		idempotency_key=row.idempotency_key,
		remote_id=None,
		payload_hash=None,
	)


def hold_while_paused(rows: list, connector: str) -> bool:
	"""While the connector's circuit is open, give claimed rows back unsent and without spending an attempt."""
	until = paused_until(connector) if rows else None
	if not until:
		return False
	frappe.db.sql(
		"""
		update `tabSync Log`
		set status = if(attempts <= 1, 'Queued', 'Failed'), attempts = attempts - 1,
			next_attempt_at = %(until)s, lease_expires_at = null, modified = %(now)s
		where name in %(names)s
		""",
		{"names": [row.name for row in rows], "until": until, "now": now_datetime()},
	)
	frappe.db.commit()
	return True


def load_group_documents(rows: list, mapping) -> dict[str, dict]:
	"""The documents of a group of rows of one mapping: snapshots for deleted ones, the rest from the database."""
	documents = {row.name: json.loads(row.payload) for row in rows if row.payload}
	live = [row for row in rows if not row.payload]
	if live:
		loaded = load_documents(
			live[0].reference_doctype, [row.reference_name for row in live], tables_read_by(mapping)
		)
		documents.update(
			{row.name: loaded[row.reference_name] for row in live if row.reference_name in loaded}
		)
	return documents


def prepare_call(row, mapping, runtime: ConnectorRuntime, documents: dict, binding) -> OutboundCall:
	operation = next((op for op in mapping.events if op.event == row.event), None)
	if operation is None:
		raise ConfigurationError(_("Mapping {0} no longer sends on {1}").format(mapping.name, row.event))
	document = documents.get(row.name)
	if document is None:
		raise SkipRow(_("{0} {1} no longer exists").format(_(row.reference_doctype), row.reference_name))
	targeted = bool(row.get("targets_remote_id"))
	remote_id = row.external_id if targeted else (binding.external_id if binding else None)
	context = {
		"event": row.event,
		"idempotency_key": row.idempotency_key,
		"remote_id": remote_id,
		"connector": runtime.name,
		"mapping": mapping.name,
		"sync_log": row.name,
	}
	compiled, _condition = compile_mapping_doc(mapping)
	payload = compiled.apply(document, context) if operation.send_body else None
	digest = payload_hash(payload) if payload is not None else None
	if mapping.skip_unchanged and binding and not targeted and digest and binding.last_payload_hash == digest:
		raise SkipRow(_("Unchanged since the last delivery"))
	path = render_path(operation.path or "", {"doc": document, "remote_id": remote_id, "context": context})
	if "{{" in (operation.path or "") and "remote_id" in operation.path and not remote_id:
		raise ConfigurationError(
			_("{0} {1} was never delivered to {2}, so there is no remote id to call {3} with").format(
				_(row.reference_doctype), row.reference_name, runtime.name, operation.path
			)
		)
	return OutboundCall(
		row=row,
		method=operation.http_method or "POST",
		path=path,
		soap_operation=operation.soap_operation or "",
		payload=payload,
		idempotency_key=row.idempotency_key,
		remote_id=remote_id,
		payload_hash=digest,
		binding=binding,
		response_replaces_binding=bool(operation.response_replaces_binding),
		targeted=targeted,
	)


def send_each(calls: list[OutboundCall], mapping, runtime: ConnectorRuntime) -> None:
	"""One request per row. The outcomes are written together when the group is done, in one commit.

	A failure that may open the circuit breaker is recorded at once, and when the connector is paused the
	rows not yet sent are given back. A worker that dies mid-group leaves its rows Running: their leases
	expire and they are sent again with the same idempotency keys, as after a crash between send and record.
	"""
	client = runtime.rest_client() if runtime.protocol != "SOAP" else None
	successes: list[tuple[OutboundCall, Any, dict]] = []
	success_unrecorded = False
	try:
		for position, call in enumerate(calls):
			started = time.monotonic()
			try:
				status, body_text, response_data = exchange(call, runtime, client)
			except TransportError as error:
				record_failure(call, mapping, runtime, error, elapsed_ms(started), in_batch=True)
				if error.retryable:
					if success_unrecorded:
						record_circuit_outcome(runtime.name, success=True)
						success_unrecorded = False
					record_circuit_outcome(runtime.name, success=False, error=error_text(error))
					if hold_while_paused([later.row for later in calls[position + 1 :]], runtime.name):
						return
				continue
			except IntegrationError as error:
				finish(
					call.row,
					"Dead",
					commit=False,
					error=error_text(error),
					request=call.request_log,
					duration_ms=elapsed_ms(started),
				)
				continue
			outcome = {
				"http_status": status,
				"response": runtime.redact(body_text),
				"duration_ms": elapsed_ms(started),
			}
			successes.append((call, response_data, outcome))
			success_unrecorded = True
	finally:
		record_successes(successes, mapping, runtime)
		frappe.db.commit()
	if success_unrecorded:
		record_circuit_outcome(runtime.name, success=True)


def exchange(call: OutboundCall, runtime: ConnectorRuntime, client) -> tuple[int, str, Any]:
	"""Send one row's request; (status, response excerpt, parsed response) or a classified error."""
	if runtime.protocol == "SOAP":
		call.request_log = {"operation": call.soap_operation, "body": call.payload}
		result = runtime.soap_client().call(call.soap_operation, call.payload or {})
		return 200, json.dumps(result, default=str), result
	call.request_log = client.prepare_preview(
		call.method, call.path, json=call.payload, idempotency_key=call.idempotency_key
	)
	response = client.request(call.method, call.path, json=call.payload, idempotency_key=call.idempotency_key)
	body_text = response.text_excerpt(RESPONSE_EXCERPT)
	response.raise_for_outcome()
	return response.status_code, body_text, response.json()


def send_batch(calls: list[OutboundCall], mapping, runtime: ConnectorRuntime) -> None:
	"""One request carries every payload; each row's outcome is read from the per-record results."""
	started = time.monotonic()
	payloads = [call.payload for call in calls]
	body = {mapping.batch_records_key: payloads} if mapping.batch_records_key else payloads
	batch_key = "ih-batch-" + payload_hash(sorted(call.idempotency_key for call in calls))[:32]
	client = runtime.rest_client()
	preview = client.prepare_preview("POST", mapping.batch_path, idempotency_key=batch_key)
	preview["headers"].pop("Content-Length", None)
	batch_id = batch_key
	for call in calls:
		call.request_log = {**preview, "body": call.payload, "batch_size": len(calls)}
	try:
		response = client.request("POST", mapping.batch_path, json=body, idempotency_key=batch_key)
		response.raise_for_outcome()
	except TransportError as error:
		for call in calls:
			record_failure(
				call, mapping, runtime, error, elapsed_ms(started), batch_id=batch_id, in_batch=True
			)
		frappe.db.commit()
		if error.retryable:
			record_circuit_outcome(runtime.name, success=False, error=error_text(error))
		return
	except IntegrationError as error:
		for call in calls:
			finish(
				call.row,
				"Dead",
				commit=False,
				error=error_text(error),
				request=call.request_log,
				batch_id=batch_id,
			)
		frappe.db.commit()
		return
	data = response.json()
	results = extract(data, mapping.batch_results_path) if mapping.batch_results_path else None
	body_text = response.text_excerpt(RESPONSE_EXCERPT)
	successes = []
	for position, call in enumerate(calls):
		result = results[position] if isinstance(results, list) and position < len(results) else None
		item_error = result.get("error") if isinstance(result, dict) else None
		if item_error:
			finish(
				call.row,
				"Dead",
				commit=False,
				error=str(item_error),
				request=call.request_log,
				http_status=response.status_code,
				response=body_text,
				batch_id=batch_id,
			)
		else:
			successes.append((call, result))
	outcome = {
		"http_status": response.status_code,
		"response": runtime.redact(body_text),
		"duration_ms": elapsed_ms(started),
		"batch_id": batch_id,
	}
	record_successes([(call, result, outcome) for call, result in successes], mapping, runtime)
	frappe.db.commit()
	record_circuit_outcome(runtime.name, success=True)


def record_successes(
	successes: list[tuple[OutboundCall, Any, dict]], mapping, runtime: ConnectorRuntime
) -> None:
	"""Bindings and outcomes of many successful rows in a few statements; row by row only when a binding conflicts.

	Each success is (call, parsed response, outcome values such as http_status, response, duration_ms).
	Rows without a mapping (ready messages) bind nothing. Nothing is committed here.
	"""
	if not successes:
		return
	if mapping is None:
		finish_many(
			[(call.row, {"request": call.request_log, **outcome}) for call, _data, outcome in successes],
			{"status": "Success", "error": None},
		)
		return
	remote_ids = [remote_id_from(call, mapping, data) for call, data, _outcome in successes]
	frappe.db.savepoint("integration_hub_successes")
	try:
		save_bindings(
			runtime.name,
			mapping,
			[
				(call, remote_id)
				for (call, _data, _outcome), remote_id in zip(successes, remote_ids, strict=True)
			],
		)
	except Exception as error:
		if not is_unique_conflict(error):
			raise
		frappe.db.rollback(save_point="integration_hub_successes")
		for call, data, outcome in successes:
			record_success(call, mapping, runtime, data, outcome)
		return
	finish_many(
		[
			(call.row, {"external_id": remote_id, "request": call.request_log, **outcome})
			for (call, _data, outcome), remote_id in zip(successes, remote_ids, strict=True)
		],
		{"status": "Success", "error": None},
	)


def save_bindings(connector: str, mapping, bound: list[tuple[OutboundCall, str | None]]) -> None:
	"""Insert the bindings the rows created in one statement and refresh the existing ones in another."""
	now = now_datetime()
	bound = [(call, remote_id) for call, remote_id in bound if not call.targeted]
	existing = [(call, remote_id) for call, remote_id in bound if call.binding]
	if existing:
		refresh_bindings(existing, mapping, now)
	fresh = [
		(
			frappe.generate_hash(length=10),
			connector,
			call.row.reference_doctype,
			call.row.reference_name,
			mapping.remote_object_type or "",
			remote_id,
			mapping.name,
			call.payload_hash,
			now,
			now,
			now,
			frappe.session.user,
			frappe.session.user,
		)
		for call, remote_id in bound
		if not call.binding and remote_id
	]
	if fresh:
		frappe.db.bulk_insert(
			"Integration Binding",
			[
				"name",
				"connector",
				"reference_doctype",
				"reference_name",
				"remote_object_type",
				"external_id",
				"mapping",
				"last_payload_hash",
				"last_synced_at",
				"creation",
				"modified",
				"owner",
				"modified_by",
			],
			fresh,
		)


def refresh_bindings(existing: list[tuple[OutboundCall, str | None]], mapping, now) -> None:
	"""One UPDATE for bindings that already existed: sync time, payload hash, and the id when it was replaced."""
	binding = frappe.qb.DocType("Integration Binding")
	hashes, remote_ids = Case(), Case()
	for call, remote_id in existing:
		hashes = hashes.when(binding.name == call.binding.name, call.payload_hash)
		remote_ids = remote_ids.when(
			binding.name == call.binding.name, str(remote_id or call.binding.external_id)
		)
	(
		frappe.qb.update(binding)
		.where(binding.name.isin([call.binding.name for call, _remote_id in existing]))
		.set(binding.last_synced_at, now)
		.set(binding.mapping, mapping.name)
		.set(binding.last_payload_hash, hashes)
		.set(binding.external_id, remote_ids)
	).run()


def is_unique_conflict(error: Exception) -> bool:
	return isinstance(error, frappe.UniqueValidationError) or frappe.db.is_unique_key_violation(error)


def remote_id_from(call: OutboundCall, mapping, response_data) -> str | None:
	"""The remote id the document is bound to after this delivery.

	Only the delivery that creates the remote object (the document is not bound yet) takes the id from the
	response, unless the operation says its response replaces the binding: a remote may answer a void or an
	update with the id of another object (a credit note, an audit entry), which must not become the document's.
	"""
	if call.targeted or (call.remote_id and not call.response_replaces_binding):
		return call.remote_id
	remote_id = None
	if mapping.remote_id_path and response_data is not None:
		try:
			remote_id = extract(response_data, mapping.remote_id_path)
		except MappingError:
			remote_id = None
	return str(remote_id) if remote_id not in (None, "") else call.remote_id


def record_success(
	call: OutboundCall, mapping, runtime: ConnectorRuntime, response_data, outcome: dict
) -> None:
	"""One row's success on its own (when the bindings of a group conflicted): bound, or Dead if its id is taken."""
	row = call.row
	remote_id = remote_id_from(call, mapping, response_data)
	if call.targeted:
		finish(row, "Success", commit=False, request=call.request_log, external_id=remote_id, **outcome)
		return
	frappe.db.savepoint("integration_hub_binding")
	try:
		save_binding(
			runtime.name,
			row.reference_doctype,
			row.reference_name,
			remote_id,
			remote_object_type=mapping.remote_object_type,
			mapping=mapping.name,
			payload_hash=call.payload_hash,
			existing=call.binding,
		)
	except Exception as error:
		if not is_unique_conflict(error):
			raise
		frappe.db.rollback(save_point="integration_hub_binding")
		owner = find_document(runtime.name, row.reference_doctype, remote_id, mapping.remote_object_type)
		finish(
			row,
			"Dead",
			commit=False,
			error=_(
				"The remote accepted the request but answered with id {0}, which already belongs to {1} {2}"
			).format(remote_id, _(row.reference_doctype), owner),
			request=call.request_log,
			external_id=remote_id,
			**outcome,
		)
		return
	finish(row, "Success", commit=False, request=call.request_log, external_id=remote_id, **outcome)


def record_failure(call, mapping, runtime, error: TransportError, duration_ms, batch_id=None, in_batch=False):
	row = call.row
	message = error_text(error)
	common = {
		"commit": not in_batch,
		"http_status": error.status_code,
		"response": runtime.redact(error.response_excerpt or ""),
		"request": call.request_log,
		"duration_ms": duration_ms,
		"batch_id": batch_id,
	}
	if isinstance(error, GoneError) and mapping:
		frappe.db.set_value("Mapping", mapping.name, "enabled", 0)
		clear_outbound_index()
		finish(
			row,
			"Dead",
			error=_("The remote answered 410 Gone; mapping {0} was disabled. {1}").format(
				mapping.name, message
			),
			**common,
		)
	elif not error.retryable:
		finish(row, "Dead", error=message, **common)
	elif row.attempts >= runtime.retry_policy.max_attempts:
		finish(
			row, "Dead", error=_("Gave up after {0} attempts: {1}").format(row.attempts, message), **common
		)
	else:
		delay = next_retry_delay(row.attempts, runtime.retry_policy, error.retry_after)
		finish(
			row, "Failed", error=message, next_attempt_at=now_datetime() + timedelta(seconds=delay), **common
		)
	if not in_batch and error.retryable:
		record_circuit_outcome(runtime.name, success=False, error=message)


def finish(row, status: str, commit: bool = True, **values) -> None:
	"""Record a row's outcome; committed at once unless the caller commits a whole batch together."""
	update = {"status": status, "lease_expires_at": None}
	update.update({key: stored_value(key, value) for key, value in values.items()})
	if status == "Success":
		update["error"] = None
	update["modified"] = now_datetime()
	log = frappe.qb.DocType("Sync Log")
	query = frappe.qb.update(log).where(log.name == row.name)
	for field_name, value in update.items():
		query = query.set(log[field_name], value)
	query.run()
	if commit:
		frappe.db.commit()


def finish_many(rows: list[tuple], common: dict) -> None:
	"""Record many rows' outcomes in one UPDATE: ``common`` for all, per-row values through CASE."""
	if not rows:
		return
	log = frappe.qb.DocType("Sync Log")
	names = [row.name for row, _values in rows]
	query = frappe.qb.update(log).where(log.name.isin(names))
	for field_name, value in {**common, "lease_expires_at": None, "modified": now_datetime()}.items():
		query = query.set(log[field_name], stored_value(field_name, value))
	for field_name in rows[0][1]:
		case = Case()
		for row, values in rows:
			case = case.when(log.name == row.name, stored_value(field_name, values[field_name]))
		query = query.set(log[field_name], case)
	query.run()


def stored_value(field_name: str, value):
	if field_name in INTEGER_FIELDS:
		return value or 0
	if field_name == "request" and value is not None:
		return json.dumps(value, indent=1, default=str)
	return value


def error_text(error: Exception) -> str:
	return getattr(error, "message", None) or str(error) or error.__class__.__name__


def elapsed_ms(started: float) -> int:
	return int((time.monotonic() - started) * 1000)
