"""Scheduled pulls: page through a remote list and bring every record in through the inbound road.

A minute tick enqueues each due mapping once (job id + a database lock, so a mapping never pulls twice at the
same time). A pull stages each page's records as inbound Sync Log rows and, in the same transaction, saves
where to resume and the incremental watermark, so the saved position is never ahead of what was stored; a
run killed at any point resumes from its last committed page and re-applies the rows it had not finished.
Records are then applied one transaction each (``apply.py``). Remote failures end the run with the reason on
the Mapping, move the connector's circuit, and honour Retry-After; the next run catches up.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import frappe
from croniter import croniter
from frappe import _
from frappe.utils import get_datetime, now_datetime

from integration_hub.connectors import get_connector, paused_until, record_circuit_outcome
from integration_hub.engine.errors import IntegrationError, TransportError
from integration_hub.engine.pagination import PaginationSpec, iter_pages, iter_soap_pages
from integration_hub.engine.watermark import advance, since_value
from integration_hub.inbound.apply import (
	ApplyCounts,
	apply_due_rows,
	apply_rows,
	remote_timezone,
	stage_records,
)
from integration_hub.jobs import enqueue_once

PULL_JOB = "integration_hub.inbound.pull.run_pull"
PULL_JOB_TIMEOUT = 3600
PROGRESS_EVENT = "integration_hub_pull_progress"
PAGINATION_STYLES = {
	"None": "none",
	"Page": "page",
	"Offset": "offset",
	"Cursor": "cursor",
	"Link Header": "link_header",
	"Next Link": "next_link",
	"Has More": "has_more",
}
CONTINUING_STYLES = frozenset({"cursor", "link_header", "next_link"})
"""Styles whose last position is where the next run goes on; the others start afresh with a since-filter."""


@dataclass
class PullCounts(ApplyCounts):
	fetched: int = 0
	pages: int = 0

	def summary(self) -> str:
		return _("fetched {0} · created {1} · updated {2} · unchanged {3} · failed {4}").format(
			self.fetched, self.created, self.updated, self.unchanged, self.failed
		)


# --- scheduling ----------------------------------------------------------------------------------------------


def schedule_pulls() -> None:
	"""Every minute: enqueue each enabled scheduled mapping whose cron time has come."""
	now = now_datetime()
	mapping = frappe.qb.DocType("Mapping")
	connector = frappe.qb.DocType("Connector")
	due = (
		frappe.qb.from_(mapping)
		.join(connector)
		.on(connector.name == mapping.connector)
		.select(
			mapping.name,
			mapping.connector,
			mapping.cron_expression,
			mapping.last_pulled_at,
			mapping.next_pull_after,
			mapping.creation,
		)
		.where(
			(mapping.enabled == 1)
			& (connector.enabled == 1)
			& (mapping.direction == "Inbound")
			& (mapping.trigger == "Schedule")
		)
	).run(as_dict=True)
	for row in due:
		if pull_is_due(row, now) and not paused_until(row.connector):
			enqueue_pull(row.name)


def pull_is_due(row, now: datetime) -> bool:
	if row.next_pull_after and get_datetime(row.next_pull_after) > now:
		return False
	if not row.cron_expression or not croniter.is_valid(row.cron_expression):
		return False
	since = get_datetime(row.last_pulled_at or row.creation)
	return croniter(row.cron_expression, since).get_next(datetime) <= now


def enqueue_pull(mapping: str) -> bool:
	return enqueue_once(PULL_JOB, f"integration_hub:pull:{mapping}", PULL_JOB_TIMEOUT, mapping=mapping)


# --- one run -------------------------------------------------------------------------------------------------


def run_pull(mapping: str) -> PullCounts | None:
	"""Pull one mapping now; None when another pull of it holds the lock."""
	if not acquire_pull_lock(mapping):
		return None
	try:
		return pull(mapping)
	finally:
		release_pull_lock(mapping)


def pull(mapping_name: str) -> PullCounts:
	mapping = frappe.get_doc("Mapping", mapping_name)
	counts = PullCounts()
	set_pull_state(mapping_name, last_pull_status="Running", last_pull_error=None)
	frappe.db.commit()
	apply_due_rows(mapping_name)
	try:
		runtime = get_connector(mapping.connector)
		resuming = bool(mapping.saved_cursor)
		run_since = mapping.run_since if resuming else fresh_since(mapping)
		watermark = mapping.watermark
		for page in source_pages(runtime, mapping, run_since):
			counts.fetched += len(page.records)
			counts.pages += 1
			staged = stage_records(mapping, page.records, "pull")
			if mapping.cursor_field:
				watermark = advance(
					watermark,
					page.records,
					mapping.cursor_field,
					cursor_kind(mapping),
					remote_timezone(mapping.connector),
				)
			set_pull_state(
				mapping_name, saved_cursor=page.next_cursor, run_since=run_since, watermark=watermark
			)
			frappe.db.commit()
			counts.unchanged += staged.unchanged + staged.waiting
			counts.failed += staged.invalid
			apply_rows(staged.rows, counts)
			publish_progress(mapping_name, counts, done=False)
	except TransportError as error:
		frappe.db.rollback()
		record_circuit_outcome(mapping.connector, success=False, error=error.message)
		finish_run(mapping_name, counts, error=error, retry_after=error.retry_after)
		return counts
	except IntegrationError as error:
		frappe.db.rollback()
		finish_run(mapping_name, counts, error=error)
		return counts
	record_circuit_outcome(mapping.connector, success=True)
	keep_position = PAGINATION_STYLES.get(mapping.pagination_style or "None") in CONTINUING_STYLES
	finish_run(mapping_name, counts, keep_position=keep_position)
	return counts


def source_pages(runtime, mapping, run_since: str | None):
	params = request_arguments(mapping)
	if mapping.since_param and run_since:
		params[mapping.since_param] = run_since
	spec = pagination_spec(mapping)
	if runtime.protocol == "SOAP":
		return iter_soap_pages(
			runtime.soap_client(), mapping.soap_operation, params, spec, mapping.saved_cursor or None
		)
	return iter_pages(
		runtime.rest_client(), mapping.endpoint_path, spec, params, mapping.saved_cursor or None
	)


def pagination_spec(mapping) -> PaginationSpec:
	optional = {
		"page_param": mapping.page_param,
		"size_param": mapping.size_param,
		"offset_param": mapping.offset_param,
		"cursor_param": mapping.cursor_param,
		"next_cursor_path": mapping.next_cursor_path,
		"next_link_path": mapping.next_link_path,
		"total_path": mapping.total_path,
		"has_more_path": mapping.has_more_path,
		"total_pages_path": mapping.total_pages_path,
		"starting_after_param": mapping.starting_after_param,
		"record_id_path": mapping.record_id_path,
	}
	return PaginationSpec(
		style=PAGINATION_STYLES.get(mapping.pagination_style or "None", "none"),
		records_path=mapping.records_path or "",
		page_size=mapping.page_size or 100,
		**{key: value for key, value in optional.items() if value},
	)


def request_arguments(mapping) -> dict:
	if not mapping.request_arguments:
		return {}
	return dict(json.loads(mapping.request_arguments))


def cursor_kind(mapping) -> str:
	return "id" if mapping.cursor_kind == "ID" else "time"


def fresh_since(mapping) -> str | None:
	"""The since-value of a new run: the saved watermark less the overlap window."""
	if not mapping.since_param or not mapping.watermark:
		return None
	return since_value(
		mapping.watermark,
		cursor_kind(mapping),
		mapping.overlap_seconds or 0,
		fmt=mapping.since_format or "iso",
		tz=remote_timezone(mapping.connector),
	)


def finish_run(
	mapping_name: str,
	counts: PullCounts,
	error: IntegrationError | None = None,
	retry_after: float | None = None,
	keep_position: bool = False,
) -> None:
	values = {
		"last_pulled_at": now_datetime(),
		"last_pull_counts": counts.summary(),
		"last_pull_status": "Failed" if error else "Success",
		"last_pull_error": error_text(error) if error else None,
		"next_pull_after": now_datetime() + timedelta(seconds=retry_after) if retry_after else None,
	}
	if not error:
		values["last_pull_success_at"] = values["last_pulled_at"]
		if not keep_position:
			values.update(saved_cursor=None, run_since=None)
	set_pull_state(mapping_name, **values)
	frappe.db.commit()
	publish_progress(mapping_name, counts, done=True, error=values["last_pull_error"])


def error_text(error: IntegrationError) -> str:
	return getattr(error, "message", None) or str(error)


def set_pull_state(mapping_name: str, **values) -> None:
	frappe.db.set_value("Mapping", mapping_name, values, update_modified=False)


def publish_progress(mapping_name: str, counts: PullCounts, done: bool, error: str | None = None) -> None:
	frappe.publish_realtime(
		PROGRESS_EVENT,
		{
			**asdict(counts),
			"mapping": mapping_name,
			"done": done,
			"error": error,
			"summary": counts.summary(),
		},
		doctype="Mapping",
		docname=mapping_name,
		after_commit=False,
	)


def reset_position(mapping_name: str) -> None:
	set_pull_state(mapping_name, saved_cursor=None, run_since=None, watermark=None, next_pull_after=None)


# --- the lock ------------------------------------------------------------------------------------------------


def pull_lock_name(mapping: str) -> str:
	"""MariaDB's named locks are per connection, so a killed worker's lock goes with its connection; they are
	server-wide, so the name carries the site's database as well as the mapping."""
	return "ih-pull-" + hashlib.sha1(f"{frappe.conf.db_name}:{mapping}".encode()).hexdigest()[:40]


def acquire_pull_lock(mapping: str) -> bool:
	return bool(frappe.db.sql("select get_lock(%s, 0)", pull_lock_name(mapping))[0][0])


def release_pull_lock(mapping: str) -> None:
	frappe.db.sql("select release_lock(%s)", pull_lock_name(mapping))
