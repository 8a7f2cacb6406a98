"""Outbound rate limiting: at most ``rate`` acquisitions in any window of ``per_seconds``.

Both limiters keep a log of recent acquisition times (a sliding window log), which, unlike fixed
windows or token buckets, never lets a burst straddle a window boundary. The window is widened by a
small ``safety_margin`` because the remote counts our requests when they *arrive*, after network
jitter; without the margin two requests spaced exactly one window apart here may land closer there.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from integration_hub.engine.errors import ConfigurationError, RetryableError

DEFAULT_MAX_WAIT = 10.0
DEFAULT_SAFETY_MARGIN = 0.05
MIN_WAIT = 1e-6


class RateLimiter(Protocol):
	def acquire(self, key: str) -> None:
		"""Block until a slot for ``key`` is free; raise RetryableError after a bounded wait."""


def validate(rate: int, per_seconds: float) -> None:
	if rate < 1 or per_seconds <= 0:
		raise ConfigurationError(
			f"A rate limit needs rate >= 1 and a positive period (got {rate}/{per_seconds}s)"
		)


class SlidingWindowLimiter:
	"""Shared waiting logic; subclasses implement ``try_acquire``."""

	rate: int
	per_seconds: float
	max_wait: float
	clock: Callable[[], float]
	sleep: Callable[[float], None]

	def try_acquire(self, key: str) -> float:
		"""Take a slot now and return 0, or return how many seconds (> 0) until one frees up."""
		raise NotImplementedError

	def acquire(self, key: str) -> None:
		deadline = self.clock() + self.max_wait
		while True:
			wait = self.try_acquire(key)
			if wait <= 0:
				return
			if self.clock() + wait > deadline:
				raise RetryableError(
					f"rate limit wait exceeded: no slot for {key!r} ({self.rate} per {self.per_seconds:g}s)"
					f" within {self.max_wait:g}s",
					retry_after=self.per_seconds,
				)
			self.sleep(wait)


class InProcessRateLimiter(SlidingWindowLimiter):
	"""Thread-safe sliding window log for one process."""

	def __init__(
		self,
		rate: int,
		per_seconds: float = 1.0,
		max_wait: float = DEFAULT_MAX_WAIT,
		safety_margin: float = DEFAULT_SAFETY_MARGIN,
		clock: Callable[[], float] = time.monotonic,
		sleep: Callable[[float], None] = time.sleep,
	) -> None:
		validate(rate, per_seconds)
		self.rate = rate
		self.per_seconds = per_seconds
		self.window = per_seconds + max(safety_margin, 0.0)
		self.max_wait = max_wait
		self.clock = clock
		self.sleep = sleep
		self.logs: dict[str, deque[float]] = {}
		self.lock = threading.Lock()

	def try_acquire(self, key: str) -> float:
		with self.lock:
			now = self.clock()
			log = self.logs.setdefault(key, deque())
			while log and log[0] <= now - self.window:
				log.popleft()
			if len(log) < self.rate:
				log.append(now)
				return 0.0
			return max(log[0] + self.window - now, MIN_WAIT)


# Runs atomically inside Redis, on Redis' own clock, so every process and host shares one timeline.
# Returns 0 when a slot was taken, else the microseconds until the oldest entry leaves the window.
SLIDING_WINDOW_SCRIPT = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
	redis.call('ZADD', key, now, member)
	redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
	return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + window - now, 1)
"""


class RedisRateLimiter(SlidingWindowLimiter):
	"""Sliding window log in a Redis sorted set, shared by every worker process."""

	def __init__(
		self,
		redis_client: Any,
		rate: int,
		per_seconds: float = 1.0,
		prefix: str = "integration_hub:ratelimit:",
		max_wait: float = DEFAULT_MAX_WAIT,
		safety_margin: float = DEFAULT_SAFETY_MARGIN,
		clock: Callable[[], float] = time.monotonic,
		sleep: Callable[[float], None] = time.sleep,
	) -> None:
		validate(rate, per_seconds)
		self.clock = clock
		self.sleep = sleep
		self.redis = redis_client
		self.rate = rate
		self.per_seconds = per_seconds
		self.window_us = round((per_seconds + max(safety_margin, 0.0)) * 1_000_000)
		self.prefix = prefix
		self.max_wait = max_wait
		self.script = redis_client.register_script(SLIDING_WINDOW_SCRIPT)

	def try_acquire(self, key: str) -> float:
		member = uuid.uuid4().hex
		wait_us = self.script(keys=[self.prefix + key], args=[self.window_us, self.rate, member])
		return int(wait_us) / 1_000_000
