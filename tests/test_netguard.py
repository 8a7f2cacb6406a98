"""SSRF guard: metadata, link-local and friends are always refused; private ranges only on request."""

from __future__ import annotations

import pytest
from conftest import Reply

from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import BlockedAddressError, ConfigurationError
from integration_hub.engine.netguard import check_url
from integration_hub.engine.rest import RestClient, RestConfig
from integration_hub.engine.soap import SoapClient, SoapConfig

ALWAYS_REFUSED = [
	"http://169.254.169.254/latest/meta-data/",
	"http://169.254.0.1/",
	"http://[fe80::1]/",
	"http://0.0.0.0/",
	"http://0.1.2.3/",
	"http://[::]/",
	"http://224.0.0.1/",
	"http://[ff02::1]/",
	"http://240.0.0.1/",
	"http://255.255.255.255/",
	"http://[::ffff:169.254.169.254]/",
	"http://[::ffff:0.0.0.0]/",
	"http://[2002:a9fe:a9fe::1]/",
	"http://[64:ff9b::a9fe:a9fe]/",
]

PRIVATE = [
	"http://127.0.0.1/",
	"http://127.8.9.10:8080/x",
	"http://localhost/",
	"http://2130706433/",
	"http://0x7f.1/",
	"http://[::1]/",
	"http://10.1.2.3/",
	"http://172.16.0.1/",
	"http://172.31.255.254/",
	"http://192.168.1.1/",
	"http://100.64.0.1/",
	"http://[fc00::1]/",
	"http://[fd12:3456::1]/",
	"http://[::ffff:10.0.0.1]/",
	"http://[::ffff:127.0.0.1]/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_always_refused_even_with_private_network_allowed(url, allow_private):
	with pytest.raises(BlockedAddressError) as caught:
		check_url(url, allow_private_network=allow_private)
	assert "resolves to" in caught.value.message


@pytest.mark.parametrize("url", PRIVATE)
def test_private_and_loopback_refused_by_default_allowed_on_request(url):
	with pytest.raises(BlockedAddressError, match="allow private network"):
		check_url(url)
	check_url(url, allow_private_network=True)


@pytest.mark.parametrize(
	"url", ["https://8.8.8.8/v1/items", "http://1.1.1.1:8443/", "https://[2606:4700::1111]/"]
)
def test_public_addresses_pass(url):
	check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://8.8.8.8/", "gopher://8.8.8.8/", "8.8.8.8/path"])
def test_only_http_and_https(url):
	with pytest.raises(BlockedAddressError, match="scheme"):
		check_url(url, allow_private_network=True)


def test_message_names_host_and_address():
	with pytest.raises(BlockedAddressError) as caught:
		check_url("http://169.254.169.254/latest/meta-data/iam/")
	assert "'169.254.169.254'" in caught.value.message
	assert "link-local" in caught.value.message


def test_unresolvable_host_is_a_configuration_error():
	with pytest.raises(ConfigurationError, match=r"Cannot resolve host 'no-such-host\.invalid'") as caught:
		check_url("https://no-such-host.invalid/api")
	assert not isinstance(caught.value, BlockedAddressError)


@pytest.mark.parametrize("url", ["http:///nohost", "http://[::1/", "http://example.com:99999/"])
def test_broken_urls_are_configuration_errors(url):
	with pytest.raises(ConfigurationError):
		check_url(url)


@pytest.mark.parametrize(
	"base_url",
	["http://169.254.169.254", "http://[fe80::1]/", "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/"],
)
def test_rest_client_aimed_at_metadata_is_refused_before_connecting(base_url, connector_key):
	client = RestClient(RestConfig(connector_key, base_url, allow_private_network=True, connect_timeout=30))
	with pytest.raises(BlockedAddressError):
		client.request("GET", "/latest/meta-data/")


def test_loopback_needs_allow_private_network(http_server, connector_key):
	http_server.route("/ping", Reply.json({"ok": True}))
	refused = RestClient(RestConfig(connector_key, http_server.base_url))
	with pytest.raises(BlockedAddressError, match="loopback"):
		refused.request("GET", "/ping")
	assert http_server.received() == []

	allowed = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	assert allowed.request("GET", "/ping").json() == {"ok": True}
	assert len(http_server.received("/ping")) == 1


def test_absolute_url_on_an_allowed_client_is_still_checked(http_server, connector_key):
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	with pytest.raises(BlockedAddressError):
		client.request("GET", "http://169.254.169.254/latest/meta-data/")


def test_oauth_token_url_is_checked_too(connector_key):
	auth = AuthConfig(
		kind="oauth2_client_credentials",
		client_id="id",
		client_secret="secret",
		token_url="http://169.254.169.254/token",
	)
	client = RestClient(RestConfig(connector_key, "https://8.8.8.8", auth=auth))
	with pytest.raises(BlockedAddressError):
		client.request("GET", "/x")


def test_soap_wsdl_url_is_checked(connector_key):
	with pytest.raises(BlockedAddressError):
		SoapClient(SoapConfig(connector_key, "http://169.254.169.254/service?wsdl"))
