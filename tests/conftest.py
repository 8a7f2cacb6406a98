"""Shared fixtures for the engine tests: real servers on 127.0.0.1 that stop by themselves."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class RecordedRequest:
	"""One request as the loopback server received it."""

	method: str
	path: str
	query: dict[str, list[str]]
	headers: dict[str, str]
	body: bytes
	client_port: int
	arrived: float

	def header(self, name: str) -> str | None:
		wanted = name.lower()
		return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

	def arg(self, name: str, default: str | None = None) -> str | None:
		return self.query.get(name, [default])[0]

	def json(self) -> Any:
		return json.loads(self.body)


@dataclass
class Reply:
	"""What a route answers; ``delay`` sleeps before answering (slow endpoints)."""

	status: int = 200
	body: bytes = b""
	headers: dict[str, str] = field(default_factory=dict)
	delay: float = 0.0

	@classmethod
	def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
		return cls(
			status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
		)


Route = Reply | Callable[[RecordedRequest], Reply]


class LoopbackHTTPServer:
	"""A threaded HTTP/1.1 server with keep-alive on 127.0.0.1 that records every request it gets.

	Tests register routes (a fixed Reply or a function of the request). Unlike werkzeug's dev server,
	which always answers ``Connection: close``, it keeps connections open, so connection reuse shows.
	"""

	def __init__(self) -> None:
		self.routes: dict[tuple[str, str], Route] = {}
		self.requests: list[RecordedRequest] = []
		self.counts: Counter[str] = Counter()
		self.keep_log = True
		"""Set False to count requests without keeping them (memory measurements)."""
		self.lock = threading.Lock()
		self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
		self.httpd.daemon_threads = True
		self.thread = threading.Thread(
			target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
		)
		self.thread.start()

	@property
	def base_url(self) -> str:
		return f"http://127.0.0.1:{self.httpd.server_address[1]}"

	def url(self, path: str = "/") -> str:
		return self.base_url + path

	def route(self, path: str, reply: Route, method: str = "GET") -> None:
		self.routes[(method.upper(), path)] = reply

	def reset(self) -> None:
		with self.lock:
			self.routes.clear()
			self.requests.clear()
			self.counts.clear()
			self.keep_log = True

	def received(self, path: str | None = None) -> list[RecordedRequest]:
		with self.lock:
			return [request for request in self.requests if path is None or request.path == path]

	def count(self, path: str) -> int:
		with self.lock:
			return self.counts[path]

	def close(self) -> None:
		self.httpd.shutdown()
		self.httpd.server_close()
		self.thread.join(timeout=5)

	def answer(self, request: RecordedRequest) -> Reply:
		with self.lock:
			self.counts[request.path] += 1
			if self.keep_log:
				self.requests.append(request)
			route = self.routes.get((request.method, request.path)) or self.routes.get(("*", request.path))
		if route is None:
			return Reply.json({"message": f"no route for {request.method} {request.path}"}, status=404)
		return route(request) if callable(route) else route

	def handler_class(self) -> type[BaseHTTPRequestHandler]:
		server = self

		class Handler(BaseHTTPRequestHandler):
			protocol_version = "HTTP/1.1"
			disable_nagle_algorithm = True
			timeout = 10

			def dispatch(self) -> None:
				arrived = time.monotonic()
				length = int(self.headers.get("Content-Length") or 0)
				body = self.rfile.read(length) if length else b""
				parts = urlsplit(self.path)
				request = RecordedRequest(
					method=self.command,
					path=parts.path,
					query=parse_qs(parts.query, keep_blank_values=True),
					headers=dict(self.headers.items()),
					body=body,
					client_port=self.client_address[1],
					arrived=arrived,
				)
				reply = server.answer(request)
				if reply.delay:
					time.sleep(reply.delay)
				try:
					self.send_response(reply.status)
					for name, value in reply.headers.items():
						self.send_header(name, value)
					self.send_header("Content-Length", str(len(reply.body)))
					self.end_headers()
					if self.command != "HEAD":
						self.wfile.write(reply.body)
				except OSError:
					self.close_connection = True

			do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = dispatch

			def log_message(self, format: str, *args: Any) -> None:
				return None

		return Handler


@pytest.fixture(scope="session")
def loopback_server_instance() -> Iterator[LoopbackHTTPServer]:
	server = LoopbackHTTPServer()
	yield server
	server.close()


@pytest.fixture
def http_server(loopback_server_instance: LoopbackHTTPServer) -> Iterator[LoopbackHTTPServer]:
	"""The shared loopback server, with no routes and an empty request log for this test."""
	loopback_server_instance.reset()
	yield loopback_server_instance
	loopback_server_instance.reset()


@pytest.fixture
def connector_key() -> str:
	"""A fresh connector key, so pooled sessions and limiters are not shared with other tests."""
	return "test-" + uuid.uuid4().hex[:12]


def free_port() -> int:
	with socket.socket() as probe:
		probe.bind(("127.0.0.1", 0))
		return probe.getsockname()[1]


@pytest.fixture
def redis_client() -> Iterator[Any]:
	"""A client of a throwaway redis-server on a random loopback port (skips when Redis is not installed)."""
	binary = shutil.which("redis-server")
	if binary is None:
		pytest.skip(
			"redis-server binary not found (apt-get install redis-server); Redis limiter test skipped"
		)
	redis = pytest.importorskip("redis")
	port = free_port()
	command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
	process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
	client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=1)
	try:
		deadline = time.monotonic() + 10
		while True:
			try:
				client.ping()
				break
			except redis.ConnectionError:
				if time.monotonic() > deadline or process.poll() is not None:
					raise
				time.sleep(0.05)
		yield client
	finally:
		client.close()
		process.kill()
		process.wait(timeout=10)
