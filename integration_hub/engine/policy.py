"""Retry policy: how an HTTP answer is classified, how long to wait before the next attempt, circuit breaking.

Everything here is a pure function of its inputs (times are passed in), so the Frappe worker can store the
results in the database and the tests need no clock.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal

OutcomeKind = Literal["success", "retry", "permanent", "gone"]

RETRYABLE_STATUSES = frozenset({408, 425, 429})
MESSAGE_KEYS = ("message", "error_description", "detail", "error", "title", "errors", "non_field_errors")
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Outcome:
	kind: OutcomeKind
	status_code: int | None
	retry_after: float | None
	message: str


def header_value(headers: Mapping[str, str], name: str) -> str | None:
	"""Case-insensitive header lookup that works for plain dicts as well as requests' header dicts."""
	value = headers.get(name)
	if value is not None:
		return value
	wanted = name.lower()
	for key, value in headers.items():
		if key.lower() == wanted:
			return value
	return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
	"""Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

	A date in the past or a negative delay gives 0; anything unparseable gives None.
	"""
	if value is None:
		return None
	text = value.strip()
	if not text:
		return None
	try:
		seconds = float(text)
	except ValueError:
		return seconds_until_http_date(text, now)
	if not math.isfinite(seconds):
		return None
	return max(seconds, 0.0)


def seconds_until_http_date(text: str, now: datetime | None) -> float | None:
	try:
		when = parsedate_to_datetime(text)
	except (TypeError, ValueError, IndexError, OverflowError):
		return None
	if when is None:
		return None
	if when.tzinfo is None:
		when = when.replace(tzinfo=timezone.utc)
	reference = now or datetime.now(timezone.utc)
	if reference.tzinfo is None:
		reference = reference.replace(tzinfo=timezone.utc)
	return max((when - reference).total_seconds(), 0.0)


def remote_message(body_excerpt: str) -> str:
	"""The remote's own explanation: a message-like field of a JSON body, else the start of the text."""
	text = body_excerpt.strip()
	if not text:
		return ""
	try:
		parsed = json.loads(text)
	except (ValueError, RecursionError):
		return shorten(" ".join(text.split()))
	found = message_from_json(parsed)
	return shorten(found if found else " ".join(text.split()))


def message_from_json(value: object, depth: int = 0) -> str:
	if depth > 3:
		return ""
	if isinstance(value, str):
		return value.strip()
	if isinstance(value, list):
		parts = [message_from_json(item, depth + 1) for item in value[:5]]
		return "; ".join(part for part in parts if part)
	if not isinstance(value, dict):
		return ""
	error_code = value.get("error") if isinstance(value.get("error"), str) else ""
	for key in MESSAGE_KEYS:
		if key not in value:
			continue
		found = message_from_json(value[key], depth + 1)
		if not found:
			continue
		if key == "error_description" and error_code and error_code not in found:
			return f"{error_code}: {found}"
		return found
	return ""


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
	return text if len(text) <= limit else text[: limit - 1] + "…"


def status_phrase(status_code: int) -> str:
	try:
		return f"HTTP {status_code} {HTTPStatus(status_code).phrase}"
	except ValueError:
		return f"HTTP {status_code}"


def classify_status(
	status_code: int,
	headers: Mapping[str, str],
	body_excerpt: str = "",
	now: datetime | None = None,
) -> Outcome:
	"""Turn an HTTP answer into success / retry / permanent / gone, keeping the remote's reason."""
	phrase = status_phrase(status_code)
	detail = remote_message(body_excerpt)
	message = f"{phrase}: {detail}" if detail else phrase
	if 200 <= status_code < 300:
		return Outcome("success", status_code, None, phrase)
	if status_code in RETRYABLE_STATUSES or 500 <= status_code < 600:
		retry_after = parse_retry_after(header_value(headers, "Retry-After"), now)
		return Outcome("retry", status_code, retry_after, message)
	if status_code == 410:
		return Outcome("gone", status_code, None, message)
	if 300 <= status_code < 400:
		location = header_value(headers, "Location")
		where = f" to {shorten(location, 200)}" if location else ""
		return Outcome("permanent", status_code, None, f"{phrase}: redirect{where} not followed")
	return Outcome("permanent", status_code, None, message)


@dataclass(frozen=True)
class RetryPolicy:
	max_attempts: int = 8
	base_delay: float = 30.0
	max_delay: float = 3600.0


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
	"""Full-jitter exponential backoff: uniform(0, min(max_delay, base_delay * 2**(attempt-1))).

	``attempt`` is the number of the attempt that just failed, starting at 1.
	"""
	exponent = min(max(attempt, 1) - 1, 64)
	ceiling = min(policy.max_delay, policy.base_delay * 2.0**exponent)
	return (rng or random).uniform(0.0, max(ceiling, 0.0))


MAX_RETRY_AFTER = 86400.0


def next_retry_delay(
	attempt: int,
	policy: RetryPolicy,
	retry_after: float | None,
	rng: random.Random | None = None,
) -> float:
	"""The remote's Retry-After wins when it gave one, even past ``max_delay`` (up to a day); else backoff.

	Retrying before the time the remote asked for only earns another refusal, so ``max_delay`` bounds
	our own backoff, not the remote's explicit wish.
	"""
	if retry_after is not None:
		return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
	return backoff_delay(attempt, policy, rng)


CircuitName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitState:
	"""Breaker state; ``open_until`` is an epoch (or any monotonic) time in seconds.

	In ``half_open`` it is the deadline of the single probe: if the probe never reports back
	(a worker died), another probe is allowed after it.
	"""

	state: CircuitName = "closed"
	consecutive_failures: int = 0
	open_until: float | None = None


@dataclass(frozen=True)
class CircuitPolicy:
	"""``failure_threshold`` <= 0 disables the breaker: failures are counted but it never opens."""

	failure_threshold: int = 5
	cooldown_seconds: float = 60.0


def circuit_allows(
	state: CircuitState, now: float, policy: CircuitPolicy | None = None
) -> tuple[bool, CircuitState]:
	"""May a call go out now? Returns the decision and the state to store."""
	if state.state == "closed":
		return True, state
	if state.open_until is not None and now < state.open_until:
		return False, state
	probe_deadline = now + (policy or CircuitPolicy()).cooldown_seconds
	return True, replace(state, state="half_open", open_until=probe_deadline)


def circuit_record_success(state: CircuitState) -> CircuitState:
	return CircuitState()


def circuit_record_failure(state: CircuitState, policy: CircuitPolicy, now: float) -> CircuitState:
	failures = state.consecutive_failures + 1
	tripped = state.state == "closed" and 0 < policy.failure_threshold <= failures
	if state.state == "half_open" or tripped:
		return CircuitState("open", failures, now + policy.cooldown_seconds)
	return replace(state, consecutive_failures=failures)
