"""Background jobs that must run once at a time per key and must not be lost to a stale RQ record."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import frappe
from frappe.utils.background_jobs import get_job, get_queues_timeout, get_redis_conn
from redis.exceptions import RedisError
from rq.job import Job, JobStatus

QUEUE_NAME = "integration_hub"
"""Deliveries and pulls run here when the bench has workers for it (common_site_config ``workers``)."""


def job_queue() -> str:
	"""The app's own queue when the bench configures workers for it, else Frappe's ``default``."""
	return QUEUE_NAME if QUEUE_NAME in get_queues_timeout() else "default"


def enqueue_once(method: str, job_id: str, timeout: int, **kwargs) -> bool:
	"""Enqueue ``method`` unless a job with ``job_id`` will really run; False when Redis cannot be reached.

	The callers' scheduler sweeps enqueue again a minute later, so a lost enqueue costs time, never data.
	"""
	try:
		if job_pending(job_id, timeout):
			return True
		frappe.enqueue(method, queue=job_queue(), job_id=job_id, timeout=timeout, **kwargs)
	except RedisError:
		frappe.logger("integration_hub").warning(
			f"Could not enqueue {method} ({job_id}); the scheduler sweep will retry", exc_info=True
		)
		return False
	return True


def job_pending(job_id: str, timeout: int) -> bool:
	"""Whether a job will really run: queued and still in its queue, or started and within its timeout.

	RQ keeps a job's record after the job leaves its queue (an emptied or lost queue, a killed worker), and
	Frappe's own ``deduplicate`` trusts that record, so a stale one would block every later enqueue and the
	rows would wait forever. A stale record is deleted here so the caller enqueues afresh.
	"""
	job = get_job(job_id)
	return job is not None and job_will_run(job, timeout)


def job_will_run(job: Job, timeout: int) -> bool:
	"""Whether ``job`` is queued in its queue or started within its timeout; a stale record is deleted."""
	status = job.get_status()
	if status == JobStatus.QUEUED and job.get_position() is not None:
		return True
	if status == JobStatus.STARTED and job.started_at:
		running_for = (
			datetime.now(timezone.utc) - job.started_at.replace(tzinfo=timezone.utc)
		).total_seconds()
		if running_for < (job.timeout or timeout):
			return True
	job.delete()
	return False


SLOT_ENQUEUE_GRACE = 10
"""Seconds a slot may name a job that is not in Redis yet: the holder is between taking the slot and enqueuing."""
TAKE_SLOT = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
RELEASE_SLOT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def enqueue_in_slot(method: str, slot: str, timeout: int, **kwargs) -> bool:
	"""Enqueue ``method`` unless a live job holds ``slot``; the job gets its own id as ``slot_holder``.

	A job holds its slot until it calls :func:`release_slot` (after its last look for work), not until RQ
	marks it finished, so work that arrives while a job is winding down gets a job of its own instead of
	waiting for a sweep. False when Redis cannot be reached (a later sweep enqueues again).
	"""
	try:
		connection = get_redis_conn()
		key = slot_key(slot)
		current = (connection.get(key) or b"").decode()
		if current and holder_is_live(current, timeout):
			return True
		holder = f"{slot}:{frappe.generate_hash(length=10)}:{int(time.time())}"
		if not connection.eval(TAKE_SLOT, 1, key, current, holder, timeout * 2):
			return True
		try:
			frappe.enqueue(
				method, queue=job_queue(), job_id=holder, timeout=timeout, slot_holder=holder, **kwargs
			)
		except RedisError:
			release_slot(slot, holder)
			raise
	except RedisError:
		frappe.logger("integration_hub").warning(
			f"Could not enqueue {method} ({slot}); the scheduler sweep will retry", exc_info=True
		)
		return False
	return True


def release_slot(slot: str, holder: str) -> None:
	"""Give up ``slot`` if ``holder`` still has it: from now on a new enqueue starts a new job.

	When Redis cannot be reached the slot stays taken until its job has finished, when enqueues see that it
	no longer runs; the job carries on either way.
	"""
	try:
		get_redis_conn().eval(RELEASE_SLOT, 1, slot_key(slot), holder)
	except RedisError:
		frappe.logger("integration_hub").warning(f"Could not release {slot}", exc_info=True)


def slot_job(slot: str) -> Job | None:
	"""The RQ job that holds ``slot`` now, if any."""
	holder = (get_redis_conn().get(slot_key(slot)) or b"").decode()
	return get_job(holder) if holder else None


def holder_is_live(holder: str, timeout: int) -> bool:
	"""Whether the job named by a slot will still look for work: queued, running, or about to be enqueued."""
	job = get_job(holder)
	if job is not None:
		return job_will_run(job, timeout)
	taken_at = holder.rsplit(":", 1)[-1]
	return taken_at.isdigit() and time.time() - int(taken_at) < SLOT_ENQUEUE_GRACE


def slot_key(slot: str) -> str:
	return f"{frappe.local.site}|integration_hub:slot:{slot}"
