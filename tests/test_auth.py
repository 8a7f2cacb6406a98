"""Every auth type against a loopback server that checks it; OAuth2 token caching, expiry and 401 refresh."""

from __future__ import annotations

import base64
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest
from conftest import RecordedRequest, Reply

from integration_hub.engine.auth import AuthConfig, InMemoryTokenCache
from integration_hub.engine.errors import ConfigurationError, RetryableError
from integration_hub.engine.rest import RestClient, RestConfig

UNAUTHORIZED = Reply.json({"message": "bad credentials"}, status=401)


def make_client(server, connector_key, auth: AuthConfig, token_cache=None) -> RestClient:
	config = RestConfig(connector_key, server.base_url, auth=auth, allow_private_network=True)
	return RestClient(config, token_cache=token_cache)


def guarded(check):
	"""A route that answers 200 with ok when ``check(request)`` holds, else 401."""
	return lambda request: Reply.json({"ok": True}) if check(request) else UNAUTHORIZED


def test_none_sends_no_credentials(http_server, connector_key):
	http_server.route("/open", guarded(lambda r: r.header("Authorization") is None))
	response = make_client(http_server, connector_key, AuthConfig()).request("GET", "/open")
	assert response.status_code == 200


def test_api_key_in_header(http_server, connector_key):
	http_server.route("/data", guarded(lambda r: r.header("X-Shop-Key") == "k-123"))
	auth = AuthConfig(kind="api_key", api_key="k-123", api_key_name="X-Shop-Key")
	assert make_client(http_server, connector_key, auth).request("GET", "/data").outcome.kind == "success"
	wrong = AuthConfig(kind="api_key", api_key="nope", api_key_name="X-Shop-Key")
	assert make_client(http_server, connector_key, wrong).request("GET", "/data").status_code == 401


def test_api_key_in_query_keeps_other_params(http_server, connector_key):
	http_server.route("/data", guarded(lambda r: r.arg("api_key") == "k/1+2" and r.arg("page") == "3"))
	auth = AuthConfig(kind="api_key", api_key="k/1+2", api_key_name="api_key", api_key_in="query")
	response = make_client(http_server, connector_key, auth).request("GET", "/data", params={"page": 3})
	assert response.status_code == 200
	assert http_server.received()[0].header("X-API-Key") is None


def test_bearer(http_server, connector_key):
	http_server.route("/me", guarded(lambda r: r.header("Authorization") == "Bearer tok-abc"))
	auth = AuthConfig(kind="bearer", token="tok-abc")
	assert make_client(http_server, connector_key, auth).request("GET", "/me").status_code == 200


def test_basic_with_non_latin1_password(http_server, connector_key):
	expected = "Basic " + base64.b64encode("erp:pässwörd€".encode()).decode()
	http_server.route("/me", guarded(lambda r: r.header("Authorization") == expected))
	auth = AuthConfig(kind="basic", username="erp", password="pässwörd€")
	assert make_client(http_server, connector_key, auth).request("GET", "/me").status_code == 200


@pytest.mark.parametrize(
	"auth",
	[
		AuthConfig(kind="api_key"),
		AuthConfig(kind="bearer"),
		AuthConfig(kind="basic"),
		AuthConfig(kind="oauth2_client_credentials", client_id="x"),
	],
)
def test_incomplete_auth_is_a_configuration_error(http_server, connector_key, auth):
	with pytest.raises(ConfigurationError):
		make_client(http_server, connector_key, auth)


def test_secrets_stay_out_of_repr():
	auth = AuthConfig(
		kind="basic", username="u", password="pw-1", api_key="ak-2", token="t-3", client_secret="cs-4"
	)
	shown = repr(auth)
	assert not any(secret in shown for secret in ("pw-1", "ak-2", "t-3", "cs-4"))
	assert "'u'" in shown


class OAuthServer:
	"""Token endpoint + protected API on the loopback server; tokens can be revoked to force a 401."""

	def __init__(self, server, client_auth: str = "basic", expires_in: int = 3600) -> None:
		self.server = server
		self.client_auth = client_auth
		self.expires_in = expires_in
		self.counter = itertools.count(1)
		self.valid: set[str] = set()
		self.lock = threading.Lock()
		server.route("/oauth/token", self.token, method="POST")
		server.route("/api/orders", self.api)

	def credentials_ok(self, request: RecordedRequest, form: dict) -> bool:
		if self.client_auth == "basic":
			expected = "Basic " + base64.b64encode(b"client-1:cs-secret-9").decode()
			return request.header("Authorization") == expected and "client_secret" not in form
		return form.get("client_id") == ["client-1"] and form.get("client_secret") == ["cs-secret-9"]

	def token(self, request: RecordedRequest) -> Reply:
		form = parse_qs(request.body.decode())
		if not self.credentials_ok(request, form) or form.get("grant_type") != ["client_credentials"]:
			return Reply.json(
				{"error": "invalid_client", "error_description": "Client authentication failed"}, 401
			)
		if form.get("scope") != ["orders:read"] or form.get("audience") != ["erp"]:
			return Reply.json({"error": "invalid_scope"}, 400)
		with self.lock:
			token = f"tok-{next(self.counter)}"
			self.valid.add(token)
		return Reply.json({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

	def api(self, request: RecordedRequest) -> Reply:
		token = (request.header("Authorization") or "").removeprefix("Bearer ")
		with self.lock:
			ok = token in self.valid
		return Reply.json({"orders": [], "token": token}) if ok else UNAUTHORIZED

	def revoke_all(self) -> None:
		with self.lock:
			self.valid.clear()

	@property
	def fetches(self) -> int:
		return len(self.server.received("/oauth/token"))


def oauth_config(server, client_auth="basic") -> AuthConfig:
	return AuthConfig(
		kind="oauth2_client_credentials",
		client_id="client-1",
		client_secret="cs-secret-9",
		token_url=server.url("/oauth/token"),
		scope="orders:read",
		audience="erp",
		client_auth=client_auth,
	)


class FakeClock:
	def __init__(self) -> None:
		self.now = 1000.0

	def __call__(self) -> float:
		return self.now


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_oauth_token_fetched_once_for_many_calls(http_server, connector_key, client_auth):
	oauth = OAuthServer(http_server, client_auth)
	client = make_client(
		http_server, connector_key, oauth_config(http_server, client_auth), InMemoryTokenCache()
	)
	tokens = {client.request("GET", "/api/orders").json()["token"] for _ in range(25)}
	assert tokens == {"tok-1"}
	assert oauth.fetches == 1
	again = make_client(http_server, connector_key, oauth_config(http_server, client_auth), client.auth.cache)
	assert again.request("GET", "/api/orders").json()["token"] == "tok-1"
	assert oauth.fetches == 1, "a second client of the same connector shares the cached token"


def test_oauth_token_refetched_after_expiry(http_server, connector_key):
	oauth = OAuthServer(http_server, expires_in=600)
	clock = FakeClock()
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache(clock))
	assert client.request("GET", "/api/orders").json()["token"] == "tok-1"
	clock.now += 600 - 31
	assert client.request("GET", "/api/orders").json()["token"] == "tok-1"
	clock.now += 2
	assert client.request("GET", "/api/orders").json()["token"] == "tok-2", "refreshed 30 s before expiry"
	assert oauth.fetches == 2


def test_oauth_401_refreshes_and_retries_that_call_once(http_server, connector_key):
	oauth = OAuthServer(http_server)
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	assert client.request("GET", "/api/orders").json()["token"] == "tok-1"
	oauth.revoke_all()
	before = len(http_server.received("/api/orders"))
	response = client.request("GET", "/api/orders")
	assert response.status_code == 200 and response.json()["token"] == "tok-2"
	assert len(http_server.received("/api/orders")) - before == 2
	assert oauth.fetches == 2
	assert client.request("GET", "/api/orders").json()["token"] == "tok-2"
	assert oauth.fetches == 2


def test_oauth_retries_a_401_exactly_once(http_server, connector_key):
	oauth = OAuthServer(http_server)
	http_server.route("/api/forbidden", UNAUTHORIZED)
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	response = client.request("GET", "/api/forbidden")
	assert response.status_code == 401
	assert response.outcome.kind == "permanent"
	assert len(http_server.received("/api/forbidden")) == 2
	assert oauth.fetches == 2


def test_oauth_retry_resends_the_body(http_server, connector_key):
	oauth = OAuthServer(http_server)
	seen = []

	def create(request: RecordedRequest) -> Reply:
		seen.append(request.json())
		return oauth.api(request)

	http_server.route("/api/orders", create, method="POST")
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	client.request("GET", "/api/orders")
	oauth.revoke_all()
	response = client.request("POST", "/api/orders", json={"id": 7}, idempotency_key="order-7")
	assert response.status_code == 200
	assert seen == [{"id": 7}, {"id": 7}]
	assert {
		r.header("Idempotency-Key") for r in http_server.received("/api/orders") if r.method == "POST"
	} == {"order-7"}


def test_concurrent_calls_fetch_one_token(http_server, connector_key):
	oauth = OAuthServer(http_server)
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	with ThreadPoolExecutor(max_workers=6) as pool:
		tokens = set(pool.map(lambda _: client.request("GET", "/api/orders").json()["token"], range(24)))
	assert tokens == {"tok-1"}
	assert oauth.fetches == 1


def test_token_endpoint_refusal_is_a_configuration_error_without_the_secret(http_server, connector_key):
	OAuthServer(http_server)
	auth = oauth_config(http_server)
	auth.client_secret = "wrong-secret"
	client = make_client(http_server, connector_key, auth, InMemoryTokenCache())
	with pytest.raises(ConfigurationError) as caught:
		client.request("GET", "/api/orders")
	assert "invalid_client: Client authentication failed" in caught.value.message
	assert "wrong-secret" not in caught.value.message
	assert http_server.received("/api/orders") == []


def test_token_endpoint_echoing_the_secret_is_masked(http_server, connector_key):
	http_server.route(
		"/oauth/token",
		Reply.json({"error": "invalid_request", "error_description": "unknown secret cs-secret-9"}, 400),
		method="POST",
	)
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	with pytest.raises(ConfigurationError) as caught:
		client.request("GET", "/api/orders")
	assert "cs-secret-9" not in str(caught.value)
	assert "unknown secret ********" in caught.value.message


@pytest.mark.parametrize(
	("reply", "error"),
	[
		(Reply.json({"message": "maintenance"}, 503, {"Retry-After": "20"}), RetryableError),
		(Reply.json({"token_type": "Bearer"}), ConfigurationError),
		(Reply(200, b"<html>login</html>"), ConfigurationError),
	],
)
def test_token_endpoint_failures(http_server, connector_key, reply, error):
	http_server.route("/oauth/token", reply, method="POST")
	client = make_client(http_server, connector_key, oauth_config(http_server), InMemoryTokenCache())
	with pytest.raises(error) as caught:
		client.request("GET", "/api/orders")
	if error is RetryableError:
		assert caught.value.retry_after == 20.0


def test_in_memory_token_cache_expires_and_deletes():
	clock = FakeClock()
	cache = InMemoryTokenCache(clock)
	cache.set("k", "v", ttl=10)
	assert cache.get("k") == "v"
	clock.now += 10
	assert cache.get("k") is None
	cache.set("k", "v2", ttl=10)
	cache.delete("k")
	assert cache.get("k") is None
