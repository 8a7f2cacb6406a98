"""Bounds on every outbound exchange: a total deadline and a cap on how much of a reply is read.

A read timeout only bounds each wait for the next bytes, so a remote that drips a byte at a time keeps
a call alive indefinitely. Each connection taken from a pool therefore starts an :class:`Exchange` with a
total deadline, watched by one thread per process; when it passes before the connection goes back to the pool, the socket
is shut down, the blocked read fails at once and the call fails as retryable. The default deadline is the connect timeout plus twice
the read timeout (:func:`total_deadline`): room for a slow first byte and an equally slow rest.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

import requests
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError

from integration_hub.engine.errors import PermanentError, RetryableError


def total_deadline(connect_timeout: float, read_timeout: float, configured: float = 0.0) -> float:
	"""The total time one exchange may take: ``configured``, or connect + 2 * read when it is 0."""
	return configured if configured > 0 else connect_timeout + 2 * read_timeout


class Exchange:
	"""One use of a pooled connection, from leaving the pool until it goes back, with its deadline.

	A reply cut off by the deadline can look complete (http.client takes a closed socket as the end of
	the headers, or of a body without Content-Length), so ``expired`` says whether it was cut off.
	"""

	def __init__(self, conn: Any, seconds: float) -> None:
		self.conn = conn
		self.seconds = seconds
		self.expired = False
		self.over = False
		self.lock = threading.Lock()
		DEADLINES.watch(self, seconds)

	def end(self) -> None:
		with self.lock:
			self.over = True

	def cut_off(self) -> None:
		"""Shut the socket down so a blocked read returns at once (unless the exchange has just ended)."""
		with self.lock:
			sock = self.conn.sock
			if self.over or sock is None:
				return
			self.expired = True
			try:
				socket.socket.shutdown(sock, socket.SHUT_RDWR)
			except OSError:
				return

	def error(self, what: str) -> RetryableError:
		return RetryableError(f"{what} did not finish within its total deadline of {self.seconds:g}s")


class DeadlineWatch:
	"""One daemon thread per process that cuts off every exchange still running past its deadline.

	A timer thread per exchange would cost more than the exchange itself on a fast network. Exchanges that
	ended are dropped from the heap as soon as they reach its top, so it holds about the running ones.
	"""

	def __init__(self) -> None:
		self.reset()

	def reset(self) -> None:
		self.condition = threading.Condition()
		self.heap: list[tuple[float, int, Exchange]] = []
		self.order = itertools.count()
		self.thread: threading.Thread | None = None

	def watch(self, exchange: Exchange, seconds: float) -> None:
		entry = (time.monotonic() + seconds, next(self.order), exchange)
		with self.condition:
			self.drop_ended()
			heapq.heappush(self.heap, entry)
			if self.thread is None or not self.thread.is_alive():
				self.thread = threading.Thread(target=self.run, name="integration-hub-deadlines", daemon=True)
				self.thread.start()
			elif self.heap[0] is entry:
				self.condition.notify()

	def drop_ended(self) -> None:
		while self.heap and self.heap[0][2].over:
			heapq.heappop(self.heap)

	def run(self) -> None:
		while True:
			with self.condition:
				self.drop_ended()
				if not self.heap:
					self.condition.wait()
					continue
				wait = self.heap[0][0] - time.monotonic()
				if wait > 0:
					self.condition.wait(wait)
					continue
				_deadline, _order, exchange = heapq.heappop(self.heap)
			exchange.cut_off()


DEADLINES = DeadlineWatch()
os.register_at_fork(after_in_child=DEADLINES.reset)


class WatchedPoolMixin:
	"""A connection pool that gives each checked-out connection an :class:`Exchange` with a deadline."""

	total_timeout: float | None = None

	def _get_conn(self, timeout: float | None = None) -> Any:
		conn = super()._get_conn(timeout)
		conn.exchange = Exchange(conn, self.total_timeout) if self.total_timeout else None
		return conn

	def _put_conn(self, conn: Any) -> None:
		exchange = getattr(conn, "exchange", None)
		if exchange is not None:
			exchange.end()
		super()._put_conn(conn)

	def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
		response = super()._make_request(conn, method, url, *args, **kwargs)
		exchange = getattr(conn, "exchange", None)
		if exchange is not None and exchange.expired:
			raise ReadTimeoutError(self, url, f"the total deadline of {exchange.seconds:g}s passed")
		return response


class WatchedHTTPConnectionPool(WatchedPoolMixin, HTTPConnectionPool):
	pass


class WatchedHTTPSConnectionPool(WatchedPoolMixin, HTTPSConnectionPool):
	pass


WATCHED_POOLS = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}


def read_limited(response: requests.Response, limit: int, what: str) -> bytes:
	"""Read a streamed body, refusing it past ``limit`` bytes or past the exchange's deadline.

	The bytes are also kept as ``response.content``, so ``.text`` and ``.json()`` work afterwards.
	"""
	exchange = getattr(getattr(response.raw, "connection", None), "exchange", None)
	try:
		body = read_chunks(response, limit, what)
	except requests.RequestException:
		if exchange is not None and exchange.expired:
			raise exchange.error(what) from None
		raise
	if exchange is not None and exchange.expired:
		raise exchange.error(what)
	response._content = body
	return body


def read_chunks(response: requests.Response, limit: int, what: str) -> bytes:
	chunks: list[bytes] = []
	size = 0
	for chunk in response.iter_content(65536):
		size += len(chunk)
		if size > limit:
			response.close()
			raise PermanentError(
				f"{what} is larger than {size_text(limit)}", status_code=response.status_code
			)
		chunks.append(chunk)
	return b"".join(chunks)


def size_text(limit: int) -> str:
	if limit >= 1024 * 1024:
		return f"{limit / (1024 * 1024):g} MiB"
	return f"{limit / 1024:g} KiB" if limit >= 1024 else f"{limit} bytes"


def deadline_exceeded(session: requests.Session, started: float, now: float) -> float | None:
	"""The session's total deadline when an exchange that began at ``started`` has run past it."""
	deadline = getattr(session, "total_timeout", None)
	return deadline if deadline and now - started >= deadline else None
