"""RestClient against a real loopback server: classification, keep-alive reuse, timeouts, previews."""

from __future__ import annotations

import json
import time

import pytest
from conftest import RecordedRequest, Reply, free_port

from integration_hub.engine import rest
from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import GoneError, PermanentError, RetryableError
from integration_hub.engine.redact import MASK
from integration_hub.engine.rest import RestClient, RestConfig


def make_config(server, connector_key, **overrides) -> RestConfig:
	return RestConfig(connector_key, server.url("/api/v2"), allow_private_network=True, **overrides)


def echo(request: RecordedRequest) -> Reply:
	return Reply.json(
		{
			"method": request.method,
			"path": request.path,
			"query": request.query,
			"headers": {k.lower(): v for k, v in request.headers.items()},
			"body": request.body.decode(),
		}
	)


def test_request_joins_base_url_and_sends_headers_body_and_params(http_server, connector_key):
	http_server.route("/api/v2/orders", echo, method="POST")
	config = make_config(http_server, connector_key, default_headers={"X-Tenant": "acme"})
	response = RestClient(config).request(
		"post",
		"orders",
		json={"id": 7, "total": "10.50"},
		params={"dry_run": 1},
		headers={"X-Trace": "t-1"},
		idempotency_key="order-7-v1",
	)
	seen = response.json()
	assert response.status_code == 200 and response.outcome.kind == "success"
	assert seen["method"] == "POST" and seen["path"] == "/api/v2/orders"
	assert seen["query"] == {"dry_run": ["1"]}
	assert json.loads(seen["body"]) == {"id": 7, "total": "10.50"}
	headers = seen["headers"]
	assert headers["x-tenant"] == "acme" and headers["x-trace"] == "t-1"
	assert headers["idempotency-key"] == "order-7-v1"
	assert headers["content-type"] == "application/json"
	assert response.elapsed_ms > 0


def test_absolute_url_and_leading_slash(http_server, connector_key):
	http_server.route("/elsewhere", echo)
	http_server.route("/api/v2/x", echo)
	client = RestClient(make_config(http_server, connector_key))
	assert client.request("GET", http_server.url("/elsewhere")).json()["path"] == "/elsewhere"
	assert client.request("GET", "/x").json()["path"] == "/api/v2/x"


@pytest.mark.parametrize(
	("reply", "kind", "error"),
	[
		(Reply.json({"ok": True}, 201), "success", None),
		(Reply.json({"message": "slow down"}, 429, {"Retry-After": "7"}), "retry", RetryableError),
		(Reply(503, b"upstream down"), "retry", RetryableError),
		(Reply.json({"message": "this API version is retired"}, 410), "gone", GoneError),
		(Reply.json({"error": "customer_id is required"}, 422), "permanent", PermanentError),
		(Reply(302, b"", {"Location": "/login"}), "permanent", PermanentError),
	],
)
def test_statuses_never_raise_until_asked(http_server, connector_key, reply, kind, error):
	http_server.route("/api/v2/thing", reply)
	response = RestClient(make_config(http_server, connector_key)).request("GET", "thing")
	assert response.outcome.kind == kind
	if error is None:
		assert response.raise_for_outcome() is response
		return
	with pytest.raises(error) as caught:
		response.raise_for_outcome()
	assert caught.value.status_code == reply.status
	assert caught.value.response_excerpt == reply.body.decode()
	if reply.status == 429:
		assert caught.value.retry_after == 7.0
	if reply.status == 422:
		assert "customer_id is required" in caught.value.message


def test_redirect_is_not_followed(http_server, connector_key):
	http_server.route("/api/v2/old", Reply(301, b"", {"Location": http_server.url("/api/v2/new")}))
	http_server.route("/api/v2/new", echo)
	response = RestClient(make_config(http_server, connector_key)).request("GET", "old")
	assert response.status_code == 301
	assert http_server.received("/api/v2/new") == []


def test_json_and_excerpt_helpers(http_server, connector_key):
	http_server.route("/api/v2/html", Reply(500, ("<html>" + "é" * 3000 + "</html>").encode()))
	response = RestClient(make_config(http_server, connector_key)).request("GET", "html")
	assert response.json() is None
	assert len(response.text_excerpt(100)) == 101 and response.text_excerpt(100).endswith("…")


def test_excerpt_masks_secrets_echoed_by_the_remote(http_server, connector_key):
	http_server.route("/api/v2/echo", lambda r: Reply(400, f"bad key {r.header('X-API-Key')}".encode()))
	auth = AuthConfig(kind="api_key", api_key="sk-live-123")
	response = RestClient(make_config(http_server, connector_key, auth=auth)).request("GET", "echo")
	assert response.text_excerpt() == f"bad key {MASK}"
	assert "sk-live-123" not in response.outcome.message
	with pytest.raises(PermanentError) as caught:
		response.raise_for_outcome()
	assert "sk-live-123" not in str(caught.value) + str(caught.value.response_excerpt)


def test_many_calls_reuse_one_keep_alive_connection(http_server, connector_key):
	http_server.route("/api/v2/ping", Reply.json({"pong": True}))
	http_server.route("/api/v2/ping", Reply.json({"created": True}), method="POST")
	config = make_config(http_server, connector_key)
	for index in range(40):
		client = RestClient(config)
		if index % 2:
			assert client.request("POST", "ping", json={"n": index}).status_code == 200
		else:
			assert client.request("GET", "ping").status_code == 200
	ports = {request.client_port for request in http_server.received()}
	assert len(http_server.received()) == 40
	assert len(ports) == 1, f"expected one TCP connection, saw {len(ports)}"


def test_config_change_gets_a_fresh_session(http_server, connector_key):
	config = make_config(http_server, connector_key)
	first = RestClient(config).session
	assert RestClient(make_config(http_server, connector_key)).session is first
	changed = RestClient(make_config(http_server, connector_key, default_headers={"X-New": "1"})).session
	assert changed is not first
	other_auth = RestClient(
		make_config(http_server, connector_key, auth=AuthConfig(kind="bearer", token="t"))
	)
	assert other_auth.session is not changed


def test_slow_endpoint_times_out_quickly_as_retryable(http_server, connector_key):
	http_server.route("/api/v2/slow", Reply(200, b"{}", delay=1.5))
	client = RestClient(make_config(http_server, connector_key, read_timeout=0.3))
	started = time.monotonic()
	with pytest.raises(RetryableError, match=r"within 0\.3s \(read timeout\)"):
		client.request("GET", "slow")
	assert time.monotonic() - started < 1.2


def test_connection_refused_is_retryable_and_keeps_secrets_out(connector_key):
	port = free_port()
	auth = AuthConfig(kind="api_key", api_key="sk-query-secret", api_key_name="key", api_key_in="query")
	config = RestConfig(connector_key, f"http://127.0.0.1:{port}", auth=auth, allow_private_network=True)
	with pytest.raises(RetryableError) as caught:
		RestClient(config).request("GET", "/items", params={"q": "x"})
	assert caught.value.message == f"Could not reach 127.0.0.1:{port}: Connection refused"
	assert "sk-query-secret" not in caught.value.message
	assert caught.value.__suppress_context__


def test_oversized_response_is_refused(http_server, connector_key, monkeypatch):
	monkeypatch.setattr(rest, "MAX_RESPONSE_BYTES", 1000)
	http_server.route("/api/v2/big", Reply(200, b"x" * 5000))
	with pytest.raises(PermanentError, match="larger than"):
		RestClient(make_config(http_server, connector_key)).request("GET", "big")


def test_prepare_preview_masks_credentials_and_makes_no_call(http_server, connector_key):
	auth = AuthConfig(kind="api_key", api_key="sk-123", api_key_name="api_key", api_key_in="query")
	client = RestClient(
		make_config(http_server, connector_key, auth=auth, default_headers={"X-Tenant": "acme"})
	)
	preview = client.prepare_preview(
		"post",
		"/customers",
		json={"name": "ACME", "portal_password": "pw", "note": "key sk-123"},
		headers={"Cookie": "session=abc"},
		idempotency_key="cust-1",
	)
	assert preview["method"] == "POST"
	assert preview["url"].startswith(http_server.url("/api/v2/customers?api_key="))
	assert "sk-123" not in json.dumps(preview)
	assert preview["headers"]["Cookie"] == MASK
	assert preview["headers"]["X-Tenant"] == "acme"
	assert preview["headers"]["Idempotency-Key"] == "cust-1"
	assert preview["body"] == {"name": "ACME", "portal_password": MASK, "note": f"key {MASK}"}
	assert http_server.received() == []


@pytest.mark.parametrize(
	"auth",
	[
		AuthConfig(kind="bearer", token="tok-1"),
		AuthConfig(kind="basic", username="u", password="pw-1"),
		AuthConfig(
			kind="oauth2_client_credentials", client_id="c", client_secret="cs-1", token_url="http://x/t"
		),
	],
)
def test_prepare_preview_shows_authorization_masked(http_server, connector_key, auth):
	preview = RestClient(make_config(http_server, connector_key, auth=auth)).prepare_preview("GET", "/me")
	assert preview["headers"]["Authorization"] == MASK
	assert preview["body"] is None
	assert http_server.received() == []


def test_health_check(http_server, connector_key):
	http_server.route("/api/v2/", Reply.json({"status": "up"}))
	response = RestClient(make_config(http_server, connector_key)).health_check()
	assert response.outcome.kind == "success" and response.json() == {"status": "up"}
