"""The outbox worker: claims due Sync Log rows, delivers them, and records every outcome.

A row is claimed with ``FOR UPDATE SKIP LOCKED`` and marked Running with a lease, in a short
transaction of its own, so any number of workers can drain the same queue without sending a row
twice. A row is only claimable when no earlier row of the same document and mapping is still open,
which keeps the rows of one document in order. A failed attempt never sleeps: the row gets its next
attempt time and the worker moves on. A worker that dies mid-send leaves a Running row whose lease
expires; the sweep makes it due again and it is resent with the same idempotency key.
"""

from __future__ import annotations

import time
from datetime import timedelta

import frappe
from frappe.utils import now_datetime

from integration_hub.connectors import secret_values
from integration_hub.engine.redact import redact_text
from integration_hub.jobs import release_slot
from integration_hub.outbound.delivery import deliver_rows
from integration_hub.outbound.dispatch import delivery_slot, enqueue_delivery

LEASE_SECONDS = 300
CLAIM_LIMIT = 50
JOB_TIME_BUDGET = 240
UNEXPECTED_ERROR_DELAY = 300
OPEN_STATUSES = ("Queued", "Failed", "Running")
COALESCED_EVENTS = ("on_update", "on_update_after_submit")


def deliver(
	connector: str | None = None, time_budget: float = JOB_TIME_BUDGET, slot_holder: str | None = None
) -> int:
	"""Deliver due rows (of one connector, or all) until none are due or the time budget is spent.

	A job enqueued by :func:`enqueue_delivery` holds the connector's delivery slot (``slot_holder``); while it
	does, later enqueues rely on it. When a claim comes back empty it releases the slot and claims once
	more: a row committed before the release is found by that claim, and a row committed after it gets a
	job of its own, so no row waits for the sweep because a job was winding down. A job whose time budget
	runs out hands the rest to a new job.
	"""
	deadline = time.monotonic() + time_budget
	attempted: set[str] = set()
	while time.monotonic() < deadline:
		rows = claim_next_rows(connector, attempted)
		if not rows and slot_holder:
			release_slot(delivery_slot(connector), slot_holder)
			slot_holder = None
			rows = claim_next_rows(connector, attempted)
		if not rows:
			return len(attempted)
		attempted.update(row.name for row in rows)
		for group in group_for_delivery(rows):
			deliver_group_safely(group)
	if connector:
		if slot_holder:
			release_slot(delivery_slot(connector), slot_holder)
		enqueue_delivery(connector)
	return len(attempted)


def claim_next_rows(connector: str | None, attempted: set[str]) -> list[frappe._dict]:
	supersede_stale_rows(connector)
	probing = bool(connector) and circuit_is_open(connector)
	return claim_due_rows(connector, limit=1 if probing else CLAIM_LIMIT, exclude=attempted)


def deliver_group_safely(rows: list[frappe._dict]) -> None:
	"""Deliver one group; an unexpected error fails only these rows (retried later), never the whole job."""
	try:
		deliver_rows(rows)
	except Exception:
		frappe.db.rollback()
		error = frappe.log_error(
			title="Integration Hub delivery failed",
			message=redact_text(frappe.get_traceback(), secret_values(rows[0].connector)),
			reference_doctype="Sync Log",
			reference_name=rows[0].name,
		)
		frappe.db.sql(
			"""
			update `tabSync Log`
			set status = 'Failed', next_attempt_at = %(retry_at)s, lease_expires_at = null,
				error = %(error)s, modified = %(now)s
			where name in %(names)s and status = 'Running'
			""",
			{
				"names": [row.name for row in rows],
				"retry_at": now_datetime() + timedelta(seconds=UNEXPECTED_ERROR_DELAY),
				"error": f"Unexpected error while delivering; see Error Log {error.name}",
				"now": now_datetime(),
			},
		)
		frappe.db.commit()


def circuit_is_open(connector: str) -> bool:
	"""After its pause, an open circuit lets a single probe row through before anything else."""
	return frappe.db.get_value("Connector", connector, "circuit_state") in ("Open", "Half Open")


def supersede_stale_rows(connector: str | None = None) -> None:
	"""Skip update rows that a newer row of the same document and mapping will replace.

	Payloads are built from the document at delivery time, so the newest row carries the newest
	state; sending the older rows first could only let an older version reach the remote last.
	The waiting update rows are found first through the (connector, status) index, each one's newer row
	through the document's index, and only those are updated: a one-statement UPDATE … JOIN let MariaDB
	read the whole history (3.4 s a delivery on a million rows).
	"""
	conditions = "and old.connector = %(connector)s" if connector else ""
	stale = frappe.db.sql(
		f"""
		select old.name, (
			select newer.name from `tabSync Log` newer
			where newer.reference_doctype = old.reference_doctype
				and newer.reference_name = old.reference_name
				and newer.mapping = old.mapping
				and newer.event = old.event
				and newer.status = 'Queued'
				and (newer.creation > old.creation or (newer.creation = old.creation and newer.name > old.name))
			limit 1
		) as newer
		from `tabSync Log` old
		where old.status in ('Queued', 'Failed') and old.direction = 'Outbound'
			and old.event in %(events)s {conditions}
		""",
		{"connector": connector, "events": COALESCED_EVENTS},
		as_dict=True,
	)
	for row in stale:
		if row.newer:
			frappe.db.sql(
				"""
				update `tabSync Log` set status = 'Skipped', error = %(error)s, modified = %(now)s
				where name = %(name)s and status in ('Queued', 'Failed')
				""",
				{
					"name": row.name,
					"error": f"Superseded by the newer change {row.newer}",
					"now": now_datetime(),
				},
			)
	frappe.db.commit()


def claim_due_rows(
	connector: str | None = None, limit: int = CLAIM_LIMIT, exclude: set[str] | frozenset[str] = frozenset()
) -> list[frappe._dict]:
	"""Lock, mark Running and return the oldest due rows no other worker holds.

	``exclude`` holds rows this job already tried: a row that failed waits for its next attempt in a
	later job even when its backoff is short, so one job never spins on a failing remote.
	"""
	now = now_datetime()
	connector_condition = "and log.connector = %(connector)s" if connector else ""
	if exclude:
		connector_condition += " and log.name not in %(exclude)s"
	names = frappe.db.sql_list(
		f"""
		select log.name from `tabSync Log` log
		where log.direction = 'Outbound'
			and log.status in ('Queued', 'Failed')
			and log.next_attempt_at <= %(now)s
			{connector_condition}
			and log.connector not in (
				select c.name from `tabConnector` c where c.enabled = 0 or c.paused_until > %(now)s
			)
			and not exists (
				select 1 from `tabSync Log` earlier
				where earlier.mapping = log.mapping
					and earlier.reference_doctype = log.reference_doctype
					and earlier.reference_name = log.reference_name
					and earlier.status in %(open_statuses)s
					and (earlier.creation < log.creation
						or (earlier.creation = log.creation and earlier.name < log.name))
			)
		order by log.creation, log.name
		limit %(limit)s
		for update skip locked
		""",
		{
			"connector": connector,
			"now": now,
			"limit": limit,
			"open_statuses": OPEN_STATUSES,
			"exclude": tuple(exclude),
		},
	)
	if not names:
		frappe.db.commit()
		return []
	frappe.db.sql(
		"""
		update `tabSync Log`
		set status = 'Running', attempts = attempts + 1, lease_expires_at = %(lease)s, modified = %(now)s
		where name in %(names)s
		""",
		{"names": names, "lease": now + timedelta(seconds=LEASE_SECONDS), "now": now},
	)
	frappe.db.commit()
	return frappe.get_all(
		"Sync Log",
		filters={"name": ("in", names)},
		fields=["*"],
		order_by="creation asc, name asc",
	)


def group_for_delivery(rows: list[frappe._dict]) -> list[list[frappe._dict]]:
	"""Rows of one mapping are delivered as a group: documents and bindings read once, outcomes written and
	committed once. A batching mapping's group holds rows of one event, at most its batch size, and travels
	in one request; any other group sends one request per row."""
	groups: list[list[frappe._dict]] = []
	open_groups: dict[tuple[str, str], list[frappe._dict]] = {}
	for row in rows:
		batch_size = (
			frappe.get_cached_value("Mapping", row.mapping, "batch_size") if row.mapping else 0
		) or 1
		key = (row.mapping, row.event if batch_size > 1 else "")
		group = open_groups.get(key)
		if group is None or (batch_size > 1 and len(group) >= batch_size):
			group = open_groups[key] = []
			groups.append(group)
		group.append(row)
	return groups


def sweep() -> None:
	"""Every minute: recover rows of dead workers, then make sure every connector with due rows has a job."""
	release_expired_leases()
	now = now_datetime()
	connectors = frappe.db.sql_list(
		"""
		select distinct connector from `tabSync Log`
		where direction = 'Outbound' and status in ('Queued', 'Failed') and next_attempt_at <= %(now)s
		""",
		{"now": now},
	)
	for connector in connectors:
		enqueue_delivery(connector)


def release_expired_leases() -> int:
	now = now_datetime()
	names = frappe.db.sql_list(
		"""
		select name from `tabSync Log`
		where status = 'Running' and lease_expires_at < %(now)s
		for update skip locked
		""",
		{"now": now},
	)
	if names:
		frappe.db.sql(
			"""
			update `tabSync Log`
			set status = 'Failed', next_attempt_at = %(now)s, modified = %(now)s,
				error = 'The worker stopped before recording the outcome; the row will be sent again with the same idempotency key'
			where name in %(names)s
			""",
			{"names": names, "now": now},
		)
	frappe.db.commit()
	return len(names)
