"""Sync Log housekeeping: names that grow with time, lean history, and clearing in small chunks.

The Sync Log is both the outbox and a month of history. Random names would scatter every insert over a
clustered index far larger than the buffer pool; names that begin with the time keep new rows together at
the end of the index, so a submit costs the same on an empty log and on a full one. Successful rows keep
what a person needs to understand them, and shed their request and response bodies after a few days;
Failed and Dead rows keep everything, because Retry needs it.
"""

from __future__ import annotations

from datetime import timedelta

import frappe
from frappe.utils import cint, now_datetime

from integration_hub.engine.ids import time_ordered_id

CHUNK = 2000
FINISHED = ("Success", "Skipped", "Cancelled", "Dead")
KEEP_BODIES_DAYS = 7


def new_log_name() -> str:
	return time_ordered_id()


def keep_bodies_days() -> int:
	return (
		cint(frappe.db.get_single_value("Integration Hub Settings", "keep_bodies_days")) or KEEP_BODIES_DAYS
	)


def trim_successful_bodies() -> int:
	"""Daily: drop request, response and payload of Success and Skipped rows older than the setting.

	It walks the table in name order, a chunk at a time with a commit between, so it never reads a row twice
	however many it has already trimmed, and never holds locks for long.
	"""
	before = now_datetime() - timedelta(days=keep_bodies_days())
	trimmed, after = 0, ""
	while True:
		rows = frappe.db.sql(
			"""
			select name, (request is not null or response is not null or payload is not null) as has_body
			from `tabSync Log`
			where name > %(after)s and status in ('Success', 'Skipped') and modified < %(before)s
			order by name
			limit %(chunk)s
			""",
			{"after": after, "before": before, "chunk": CHUNK},
			as_dict=True,
		)
		if not rows:
			return trimmed
		after = rows[-1].name
		names = [row.name for row in rows if row.has_body]
		if names:
			frappe.db.sql(
				"""update `tabSync Log` set request = null, response = null, payload = null
				where name in %(names)s""",
				{"names": names},
			)
			frappe.db.commit()
			trimmed += len(names)


def clear_finished_rows(days: int) -> int:
	"""Log Settings' clearing, a chunk at a time with a commit between, so deliveries never wait on it."""
	before = now_datetime() - timedelta(days=days)
	cleared = 0
	while True:
		names = frappe.db.sql_list(
			"""select name from `tabSync Log` where modified < %(before)s and status in %(finished)s
			limit %(chunk)s""",
			{"before": before, "finished": FINISHED, "chunk": CHUNK},
		)
		if not names:
			return cleared
		frappe.db.sql("delete from `tabSync Log` where name in %(names)s", {"names": names})
		frappe.db.commit()
		cleared += len(names)
