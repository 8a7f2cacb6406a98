"""The guard checks the URL that is really sent and connects to the address it checked (issue #11, 1-2)."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess

import pytest
import requests
from conftest import LoopbackHTTPServer, Reply

from integration_hub.engine import netguard
from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import (
	BlockedAddressError,
	ConfigurationError,
	PermanentError,
	RetryableError,
)
from integration_hub.engine.netguard import GuardedSession, check_url
from integration_hub.engine.pagination import PaginationSpec, iter_pages
from integration_hub.engine.rest import RestClient, RestConfig

PUBLIC = "8.8.8.8"


@pytest.fixture
def internal_server():
	"""A second loopback server standing for an internal service the remote must not reach."""
	server = LoopbackHTTPServer()
	server.route("/", Reply.json({"internal": True}))
	yield server
	server.close()


def smuggled(internal_port: int, public_port: int, path: str = "/x") -> str:
	"""urlsplit reads the public host; requests and urllib3 connect to 127.0.0.1."""
	return f"http://127.0.0.1:{internal_port}\\@{PUBLIC}:{public_port}{path}"


@pytest.mark.parametrize(
	"url",
	[
		smuggled(8080, 8080),
		f"http://{PUBLIC}\\evil/x",
		"http://user:pw@8.8.8.8/x",
		"http://user@8.8.8.8/x",
		"http://@8.8.8.8/x",
	],
)
def test_backslash_and_userinfo_are_refused(url):
	with pytest.raises(BlockedAddressError):
		check_url(url)


def test_smuggled_absolute_path_never_reaches_the_internal_host(internal_server, connector_key):
	port = internal_server.httpd.server_address[1]
	client = RestClient(RestConfig(connector_key, f"http://{PUBLIC}:{port}"))
	with pytest.raises(BlockedAddressError):
		client.request("PUT", smuggled(port, port, "/"), json={"x": 1})
	with pytest.raises(BlockedAddressError):
		client.health_check("GET", smuggled(port, port, "/"))
	assert internal_server.received() == []


def test_absolute_path_must_stay_on_the_base_url_origin(http_server, connector_key):
	http_server.route("/ok", Reply.json({"ok": True}))
	client = RestClient(RestConfig(connector_key, http_server.base_url + "/api", allow_private_network=True))
	assert client.request("GET", http_server.url("/ok")).json() == {"ok": True}
	other = http_server.base_url.replace("127.0.0.1", "localhost")
	with pytest.raises(BlockedAddressError, match="origin"):
		client.request("GET", other + "/ok")


def test_the_prepared_url_is_what_gets_checked(internal_server):
	"""Even a caller that bypasses Session.request is checked on the host requests will connect to."""
	port = internal_server.httpd.server_address[1]
	session = GuardedSession(allow_private_network=False)
	prepared = requests.Request("GET", smuggled(port, port, "/")).prepare()
	with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1"):
		session.send(prepared, timeout=(1, 1))
	assert internal_server.received() == []


def test_link_header_cannot_smuggle_another_host(http_server, internal_server, connector_key):
	port = http_server.httpd.server_address[1]
	internal_port = internal_server.httpd.server_address[1]
	link = f"http://127.0.0.1:{internal_port}\\@127.0.0.1:{port}/"
	http_server.route("/items", Reply.json([{"id": 1}], headers={"Link": f'<{link}>; rel="next"'}))
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	pages = iter_pages(client, "/items", PaginationSpec(style="link_header"))
	assert next(pages).records == [{"id": 1}]
	with pytest.raises(ConfigurationError):
		next(pages)
	assert internal_server.received() == []


class Resolver:
	"""Answers the checked address first and something else on every later lookup (DNS rebinding)."""

	def __init__(self, first: str, later: str = "169.254.169.254") -> None:
		self.answers = [ipaddress.ip_address(first)]
		self.later = ipaddress.ip_address(later)
		self.calls: list[str] = []

	def __call__(self, host: str, port: int) -> list:
		self.calls.append(host)
		return [self.answers.pop(0) if self.answers else self.later]


def test_connection_goes_to_the_checked_address(http_server, connector_key, monkeypatch):
	"""The name resolves once, to 127.0.0.1; the connection uses that answer, with the name as Host."""
	resolver = Resolver("127.0.0.1")
	monkeypatch.setattr(netguard, "resolve", resolver)
	http_server.route("/ping", Reply.json({"ok": True}))
	port = http_server.httpd.server_address[1]
	client = RestClient(
		RestConfig(connector_key, f"http://rebind.invalid:{port}", allow_private_network=True)
	)
	assert client.request("GET", "/ping").json() == {"ok": True}
	assert resolver.calls == ["rebind.invalid"]
	assert http_server.received("/ping")[0].header("Host") == f"rebind.invalid:{port}"

	with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
		client.request("GET", "/ping")
	assert len(http_server.received("/ping")) == 1


def test_oauth_token_call_is_pinned_too(http_server, connector_key, monkeypatch):
	monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
	port = http_server.httpd.server_address[1]
	http_server.route("/token", Reply.json({"access_token": "tok-1", "expires_in": 60}), method="POST")
	http_server.route("/api", lambda request: Reply.json({"auth": request.header("Authorization")}))
	auth = AuthConfig(
		kind="oauth2_client_credentials",
		client_id="id",
		client_secret="cs",
		token_url=f"http://auth.invalid:{port}/token",
	)
	config = RestConfig(connector_key, f"http://api.invalid:{port}", auth=auth, allow_private_network=True)
	assert RestClient(config).request("GET", "/api").json() == {"auth": "Bearer tok-1"}
	assert http_server.received("/token")[0].header("Host") == f"auth.invalid:{port}"


def test_unresolvable_pinned_host_is_a_configuration_error(connector_key):
	client = RestClient(RestConfig(connector_key, "http://no-such-host.invalid", connect_timeout=1))
	with pytest.raises(ConfigurationError, match="Cannot resolve") as caught:
		client.request("GET", "/")
	assert not isinstance(caught.value, RetryableError)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
	"""A throwaway CA and a certificate for pinned.test, made with the openssl command."""
	openssl = shutil.which("openssl")
	if openssl is None:
		pytest.skip("openssl not found; the pinned HTTPS test needs it to make certificates")
	folder = tmp_path_factory.mktemp("tls")
	(folder / "san.ext").write_text("subjectAltName=DNS:pinned.test\n")
	commands = [
		"req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ih-test-ca",
		"req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=pinned.test",
		"x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile san.ext",
	]
	for command in commands:
		subprocess.run([openssl, *command.split()], cwd=folder, check=True, capture_output=True, timeout=60)
	return folder


@pytest.fixture
def tls_server(tls_files):
	server = LoopbackHTTPServer()
	server.route("/ping", Reply.json({"ok": True}))
	context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
	context.load_cert_chain(tls_files / "leaf.pem", tls_files / "leaf.key")
	server.server_names = []
	context.sni_callback = lambda sock, name, ctx: server.server_names.append(name)
	server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
	yield server
	server.close()


def https_client(connector_key: str, host: str, port: int, ca: str) -> RestClient:
	client = RestClient(RestConfig(connector_key, f"https://{host}:{port}", allow_private_network=True))
	client.session.verify = ca
	return client


def test_pinned_https_keeps_sni_and_checks_the_certificate_against_the_name(
	tls_server, tls_files, connector_key, monkeypatch
):
	monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
	port = tls_server.httpd.server_address[1]
	ca = str(tls_files / "ca.pem")
	assert https_client(connector_key, "pinned.test", port, ca).request("GET", "/ping").json() == {"ok": True}
	assert tls_server.server_names == ["pinned.test"]
	assert tls_server.received("/ping")[0].header("Host") == f"pinned.test:{port}"

	with pytest.raises(PermanentError, match="certificate"):
		https_client(connector_key + "-other", "other.test", port, ca).request("GET", "/ping")
	assert len(tls_server.received("/ping")) == 1


def test_refusal_messages_never_show_the_query(connector_key):
	auth = AuthConfig(kind="api_key", api_key="sk-query-key", api_key_name="key", api_key_in="query")
	client = RestClient(RestConfig(connector_key, "http://169.254.169.254", auth=auth))
	with pytest.raises(BlockedAddressError) as caught:
		client.request("GET", "/x?tenant=1")
	assert "sk-query-key" not in caught.value.message
	with pytest.raises(BlockedAddressError) as caught:
		check_url("http://8.8.8.8\\evil/x?key=sk-query-key")
	assert "sk-query-key" not in caught.value.message
