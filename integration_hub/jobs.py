"""Background jobs that must run once at a time per key and must not be lost to a stale RQ record."""

from __future__ import annotations

from datetime import datetime, timezone

import frappe
from frappe.utils.background_jobs import get_job, get_queues_timeout
from redis.exceptions import RedisError
from rq.job import JobStatus

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
	if job is None:
		return False
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
