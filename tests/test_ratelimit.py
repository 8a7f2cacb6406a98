"""Rate limiters: in ANY window of ``per_seconds`` at most ``rate`` requests, as the server sees them."""

from __future__ import annotations

import bisect
import threading
import time

import pytest
from conftest import Reply
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_hub.engine.errors import ConfigurationError, RetryableError
from integration_hub.engine.ratelimit import InProcessRateLimiter, RedisRateLimiter
from integration_hub.engine.rest import RestClient, RestConfig

RATE = 10


def busiest_window(times: list[float], width: float) -> int:
	"""The largest number of timestamps in any closed window [t, t + width]."""
	ordered = sorted(times)
	return max((bisect.bisect_right(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def test_busiest_window_helper():
	assert busiest_window([], 1.0) == 0
	assert busiest_window([0.0, 0.5, 1.0, 1.01, 3.0], 1.0) == 3
	assert busiest_window([0.0, 1.0, 2.0], 0.99) == 1


def hammer(clients: list[RestClient], per_thread: int) -> None:
	"""Each client sends ``per_thread`` requests from its own thread."""
	errors: list[BaseException] = []

	def work(client: RestClient) -> None:
		try:
			for _ in range(per_thread):
				assert client.request("GET", "/limited").status_code == 200
		except BaseException as exc:
			errors.append(exc)

	threads = [threading.Thread(target=work, args=(client,)) for client in clients]
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join(timeout=30)
	assert not errors, errors


def assert_server_saw_at_most_rate(server) -> None:
	arrivals = [request.arrived for request in server.received("/limited")]
	assert len(arrivals) == 3 * RATE
	assert busiest_window(arrivals, 1.0) <= RATE
	assert max(arrivals) - min(arrivals) >= 2.0, "30 requests at 10/s cannot all arrive within 2 s"


def test_in_process_limiter_holds_at_the_server(http_server, connector_key):
	http_server.route("/limited", Reply.json({"ok": True}))
	config = RestConfig(
		connector_key, http_server.base_url, allow_private_network=True, rate_limit_per_second=RATE
	)
	hammer([RestClient(config) for _ in range(3)], RATE)
	assert_server_saw_at_most_rate(http_server)


def test_redis_limiter_holds_across_limiter_instances(http_server, connector_key, redis_client):
	http_server.route("/limited", Reply.json({"ok": True}))
	config = RestConfig(connector_key, http_server.base_url, allow_private_network=True)
	clients = [RestClient(config, rate_limiter=RedisRateLimiter(redis_client, RATE)) for _ in range(3)]
	hammer(clients, RATE)
	assert_server_saw_at_most_rate(http_server)
	assert redis_client.ttl(f"integration_hub:ratelimit:{connector_key}") > 0


def test_redis_limiter_gives_up_after_a_bounded_wait(redis_client):
	limiter = RedisRateLimiter(redis_client, 2, per_seconds=60, max_wait=0.2)
	limiter.acquire("k")
	limiter.acquire("k")
	started = time.monotonic()
	with pytest.raises(RetryableError, match="rate limit wait exceeded"):
		limiter.acquire("k")
	assert time.monotonic() - started < 0.5
	limiter.acquire("another-key")


class FakeTime:
	"""A clock whose sleep advances it, so limiter behaviour can be checked without waiting."""

	def __init__(self) -> None:
		self.now = 0.0

	def clock(self) -> float:
		return self.now

	def sleep(self, seconds: float) -> None:
		self.now += seconds


@settings(max_examples=60, deadline=None)
@given(
	rate=st.integers(min_value=1, max_value=8),
	per_seconds=st.sampled_from([0.5, 1.0, 2.5]),
	gaps=st.lists(st.floats(min_value=0, max_value=1.5), min_size=1, max_size=60),
)
def test_property_no_window_holds_more_than_rate(rate, per_seconds, gaps):
	fake = FakeTime()
	limiter = InProcessRateLimiter(rate, per_seconds, max_wait=1e9, clock=fake.clock, sleep=fake.sleep)
	taken = []
	for gap in gaps:
		fake.now += gap
		limiter.acquire("k")
		taken.append(fake.now)
	assert busiest_window(taken, per_seconds) <= rate


def test_bounded_wait_raises_retryable():
	fake = FakeTime()
	limiter = InProcessRateLimiter(1, per_seconds=30, max_wait=5, clock=fake.clock, sleep=fake.sleep)
	limiter.acquire("k")
	with pytest.raises(RetryableError, match="rate limit wait exceeded") as caught:
		limiter.acquire("k")
	assert caught.value.retryable and caught.value.retry_after == 30
	assert fake.now == 0, "it gives up at once when the wait is known to be too long"
	limiter.acquire("other")


def test_waits_for_the_oldest_slot():
	fake = FakeTime()
	limiter = InProcessRateLimiter(2, per_seconds=1.0, safety_margin=0.0, clock=fake.clock, sleep=fake.sleep)
	limiter.acquire("k")
	fake.now = 0.4
	limiter.acquire("k")
	limiter.acquire("k")
	assert fake.now == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "per"), [(0, 1.0), (5, 0.0), (-1, 1.0)])
def test_invalid_limits(rate, per):
	with pytest.raises(ConfigurationError):
		InProcessRateLimiter(rate, per)
