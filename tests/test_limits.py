"""Every call has a total deadline and a size cap: REST, OAuth token, WSDL (issue #11, 5 and 10).

The SOAP reply is covered in test_soap.py, next to the SOAP test service.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from conftest import Reply

from integration_hub.engine import auth as auth_module
from integration_hub.engine import soap
from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import ConfigurationError, MappingError, PermanentError, RetryableError
from integration_hub.engine.rest import RestClient, RestConfig
from integration_hub.engine.soap import SoapClient, SoapConfig


class DripServer:
	"""Answers every request on 127.0.0.1 one byte at a time, each byte well within the read timeout."""

	def __init__(self, body: bytes, interval: float = 0.1, drip_headers: bool = False) -> None:
		self.body = body
		self.interval = interval
		self.drip_headers = drip_headers
		self.listener = socket.create_server(("127.0.0.1", 0))
		self.listener.settimeout(0.2)
		self.stopped = threading.Event()
		self.thread = threading.Thread(target=self.serve, daemon=True)
		self.thread.start()

	@property
	def base_url(self) -> str:
		return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

	def serve(self) -> None:
		while not self.stopped.is_set():
			try:
				conn, _address = self.listener.accept()
			except OSError:
				continue
			threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

	def answer(self, conn: socket.socket) -> None:
		head = (
			f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(self.body)}\r\n\r\n".encode()
		)
		with conn:
			try:
				conn.recv(65536)
				if not self.drip_headers:
					conn.sendall(head)
				for byte in (head if self.drip_headers else b"") + self.body:
					if self.stopped.is_set():
						return
					conn.sendall(bytes([byte]))
					time.sleep(self.interval)
			except OSError:
				return

	def close(self) -> None:
		self.stopped.set()
		self.listener.close()
		self.thread.join(timeout=2)


@pytest.fixture
def drip():
	servers: list[DripServer] = []

	def start(body: bytes = b"x" * 60, drip_headers: bool = False) -> DripServer:
		servers.append(DripServer(body, drip_headers=drip_headers))
		return servers[-1]

	yield start
	for server in servers:
		server.close()


def rest_config(connector_key: str, base_url: str, **overrides) -> RestConfig:
	settings = {"connect_timeout": 0.5, "read_timeout": 0.5, "total_timeout": 1.5, **overrides}
	return RestConfig(connector_key, base_url, allow_private_network=True, **settings)


def test_default_deadline_is_connect_plus_twice_read():
	assert RestConfig("k", "http://x", connect_timeout=1, read_timeout=2).deadline() == 5
	assert RestConfig("k", "http://x", total_timeout=7).deadline() == 7
	assert SoapConfig("k", "a.wsdl", connect_timeout=1, operation_timeout=3).deadline() == 7


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_rest_call_that_drips_stops_at_the_deadline(drip, connector_key, drip_headers):
	server = drip(drip_headers=drip_headers)
	started = time.monotonic()
	with pytest.raises(RetryableError, match=r"total deadline of 1\.5s"):
		RestClient(rest_config(connector_key, server.base_url)).request("GET", "/slow")
	assert time.monotonic() - started < 2.5


def test_oauth_token_call_that_drips_stops_at_the_deadline(drip, connector_key):
	server = drip()
	auth = AuthConfig(
		kind="oauth2_client_credentials",
		client_id="id",
		client_secret="cs",
		token_url=server.base_url + "/token",
	)
	client = RestClient(rest_config(connector_key, "http://127.0.0.1:9", auth=auth))
	started = time.monotonic()
	with pytest.raises(RetryableError, match="deadline"):
		client.request("GET", "/x")
	assert time.monotonic() - started < 2.5


def test_wsdl_that_drips_stops_at_the_deadline(drip, connector_key):
	server = drip()
	config = SoapConfig(
		connector_key,
		server.base_url + "/service?wsdl",
		connect_timeout=0.5,
		operation_timeout=0.5,
		total_timeout=1.5,
		allow_private_network=True,
	)
	started = time.monotonic()
	with pytest.raises(RetryableError, match="deadline"):
		SoapClient(config)
	assert time.monotonic() - started < 2.5


def test_oversized_token_response_is_refused(http_server, connector_key, monkeypatch):
	monkeypatch.setattr(auth_module, "MAX_TOKEN_RESPONSE_BYTES", 1000)
	padding = "x" * 5000
	http_server.route(
		"/token", Reply.json({"access_token": "t", "expires_in": 60, "pad": padding}), method="POST"
	)
	auth = AuthConfig(
		kind="oauth2_client_credentials",
		client_id="id",
		client_secret="cs",
		token_url=http_server.url("/token"),
	)
	client = RestClient(rest_config(connector_key, http_server.base_url, auth=auth))
	with pytest.raises(PermanentError, match="larger than"):
		client.request("GET", "/x")


def test_oversized_wsdl_is_refused(http_server, connector_key, monkeypatch):
	monkeypatch.setattr(soap, "MAX_WSDL_BYTES", 1000)
	http_server.route("/big.wsdl", Reply(200, b"<definitions>" + b" " * 5000 + b"</definitions>"))
	config = SoapConfig(connector_key, http_server.url("/big.wsdl"), allow_private_network=True)
	with pytest.raises(PermanentError, match="larger than"):
		SoapClient(config)


# Every failure is classified (issue #11, 9)


@pytest.mark.parametrize(
	("options", "error"),
	[
		({"headers": {"X-Name": "price €"}}, ConfigurationError),
		({"json": {"amount": object()}}, MappingError),
		({"json": {"amount": float("nan")}}, MappingError),
	],
)
def test_request_that_cannot_be_sent_is_a_classified_permanent_error(
	http_server, connector_key, options, error
):
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	with pytest.raises(error) as caught:
		client.request("POST", "/x", **options)
	assert not caught.value.retryable
	assert http_server.received() == []
