"""Retry classification, Retry-After, backoff and the circuit breaker."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_hub.engine.policy import (
	CircuitPolicy,
	CircuitState,
	RetryPolicy,
	backoff_delay,
	circuit_allows,
	circuit_record_failure,
	circuit_record_success,
	classify_status,
	next_retry_delay,
	parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

CLASSIFICATION = [
	*[(code, "success") for code in (200, 201, 202, 203, 204, 206, 299)],
	*[(code, "retry") for code in (408, 425, 429, 500, 501, 502, 503, 504, 507, 599)],
	(410, "gone"),
	*[
		(code, "permanent")
		for code in (400, 401, 402, 403, 404, 405, 406, 409, 411, 412, 413, 415, 422, 451, 499)
	],
	*[(code, "permanent") for code in (300, 301, 302, 303, 304, 307, 308)],
]


@pytest.mark.parametrize(("status", "kind"), CLASSIFICATION)
def test_classification_table(status, kind):
	outcome = classify_status(status, {}, "")
	assert outcome.kind == kind
	assert outcome.status_code == status
	assert str(status) in outcome.message


@pytest.mark.parametrize(
	("body", "expected"),
	[
		(json.dumps({"message": "customer_id is required"}), "customer_id is required"),
		(
			json.dumps({"error": "invalid_grant", "error_description": "code expired"}),
			"invalid_grant: code expired",
		),
		(json.dumps({"detail": "Not allowed for this plan"}), "Not allowed for this plan"),
		(json.dumps({"error": {"message": "Nested reason", "code": 17}}), "Nested reason"),
		(json.dumps({"errors": [{"message": "first"}, {"message": "second"}]}), "first; second"),
		("<html><body>Plain failure page</body></html>", "<html><body>Plain failure page</body></html>"),
	],
)
def test_permanent_outcome_carries_the_remote_reason(body, expected):
	outcome = classify_status(422, {"Content-Type": "application/json"}, body)
	assert outcome.kind == "permanent"
	assert expected in outcome.message


def test_deeply_nested_json_body_does_not_break_classification():
	outcome = classify_status(400, {}, "[" * 5000 + "]" * 5000)
	assert outcome.kind == "permanent"


def test_long_text_bodies_are_cut_to_an_excerpt():
	outcome = classify_status(400, {}, "x" * 5000)
	assert outcome.kind == "permanent"
	assert 250 < len(outcome.message) < 400


def test_redirect_is_permanent_and_names_the_target():
	outcome = classify_status(302, {"location": "https://elsewhere.example/login"}, "")
	assert outcome.kind == "permanent"
	assert "elsewhere.example" in outcome.message
	assert "not followed" in outcome.message


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_delta_seconds_on_429(name):
	outcome = classify_status(429, {name: "120"}, "")
	assert outcome == classify_status(429, {"Retry-After": "120"}, "")
	assert outcome.kind == "retry"
	assert outcome.retry_after == 120.0


def test_retry_after_http_date_on_503():
	when = NOW + timedelta(seconds=90)
	header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
	outcome = classify_status(503, {"Retry-After": header}, "", now=NOW)
	assert outcome.kind == "retry"
	assert outcome.retry_after == pytest.approx(90.0)


@pytest.mark.parametrize(
	("value", "expected"),
	[
		("0", 0.0),
		("5", 5.0),
		("  30  ", 30.0),
		("1.5", 1.5),
		("-10", 0.0),
		("Wed, 01 May 2024 12:01:00 GMT", 60.0),
		("Wednesday, 01-May-24 12:00:30 GMT", 30.0),
		("Wed May  1 12:00:10 2024", 10.0),
		("Wed, 01 May 2024 11:00:00 GMT", 0.0),
		("soon", None),
		("", None),
		(None, None),
		("nan", None),
		("inf", None),
		("12 apples", None),
	],
)
def test_parse_retry_after_both_forms(value, expected):
	result = parse_retry_after(value, now=NOW)
	if expected is None:
		assert result is None
	else:
		assert result == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(value):
	result = parse_retry_after(value, now=NOW)
	assert result is None or result >= 0


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_within_the_cap(attempt, seed):
	policy = RetryPolicy(base_delay=30.0, max_delay=3600.0)
	delay = backoff_delay(attempt, policy, random.Random(seed))
	assert 0.0 <= delay <= min(3600.0, 30.0 * 2.0 ** min(attempt - 1, 64))


def test_backoff_ceiling_doubles_then_caps():
	policy = RetryPolicy(base_delay=10.0, max_delay=100.0)

	class Top(random.Random):
		def uniform(self, a, b):
			return b

	assert [backoff_delay(n, policy, Top()) for n in range(1, 7)] == [10.0, 20.0, 40.0, 80.0, 100.0, 100.0]


def test_backoff_spreads_over_the_whole_interval():
	rng = random.Random(7)
	delays = [backoff_delay(3, RetryPolicy(base_delay=1.0), rng) for _ in range(2000)]
	assert min(delays) < 0.2
	assert max(delays) > 3.8
	assert all(0 <= d <= 4.0 for d in delays)


def test_retry_after_wins_over_backoff_and_is_capped():
	policy = RetryPolicy(base_delay=30.0, max_delay=600.0)
	assert next_retry_delay(1, policy, 42.0) == 42.0
	assert next_retry_delay(1, policy, 10_000.0) == 10_000.0
	assert next_retry_delay(1, policy, 500_000.0) == 86_400.0
	assert next_retry_delay(1, policy, -3.0) == 0.0
	assert 0 <= next_retry_delay(4, policy, None, random.Random(1)) <= 240.0


def test_circuit_opens_after_threshold_and_half_opens_after_cooldown():
	policy = CircuitPolicy(failure_threshold=3, cooldown_seconds=60.0)
	state = CircuitState()
	for second in range(2):
		state = circuit_record_failure(state, policy, now=1000.0 + second)
		assert state.state == "closed"
	state = circuit_record_failure(state, policy, now=1002.0)
	assert state == CircuitState("open", 3, 1062.0)

	allowed, still_open = circuit_allows(state, 1061.9)
	assert not allowed and still_open == state

	allowed, probing = circuit_allows(state, 1062.0, policy)
	assert allowed and probing.state == "half_open"
	allowed_again, same = circuit_allows(probing, 1063.0, policy)
	assert not allowed_again and same == probing


def test_half_open_probe_failure_reopens_and_success_closes():
	policy = CircuitPolicy(failure_threshold=1, cooldown_seconds=10.0)
	opened = circuit_record_failure(CircuitState(), policy, now=0.0)
	_, probing = circuit_allows(opened, 10.0, policy)
	reopened = circuit_record_failure(probing, policy, now=11.0)
	assert reopened.state == "open" and reopened.open_until == 21.0
	_, probing = circuit_allows(reopened, 21.0, policy)
	assert circuit_record_success(probing) == CircuitState()


def test_lost_probe_allows_another_after_its_deadline():
	policy = CircuitPolicy(failure_threshold=1, cooldown_seconds=10.0)
	_, probing = circuit_allows(circuit_record_failure(CircuitState(), policy, 0.0), 10.0, policy)
	assert circuit_allows(probing, 15.0, policy)[0] is False
	assert circuit_allows(probing, 20.0, policy)[0] is True


def test_closed_circuit_allows_and_success_resets_count():
	policy = CircuitPolicy(failure_threshold=3)
	state = circuit_record_failure(CircuitState(), policy, 0.0)
	assert circuit_allows(state, 0.0) == (True, state)
	assert circuit_record_success(state).consecutive_failures == 0


def test_non_positive_threshold_disables_the_breaker():
	state = CircuitState()
	for second in range(50):
		state = circuit_record_failure(state, CircuitPolicy(failure_threshold=0), float(second))
	assert state.state == "closed" and state.consecutive_failures == 50
	assert circuit_allows(state, 50.0)[0]
