"""Login-token auth against a loopback server shaped like Django REST Framework and ZKBio Time: POST the
credentials, cache the token, send it with the configured scheme, log in again once on a 401."""

from __future__ import annotations

import itertools
import threading

import pytest
from conftest import RecordedRequest, Reply
from fake_apis import DrfList

from integration_hub.engine.auth import AuthConfig, InMemoryTokenCache
from integration_hub.engine.errors import (
	BlockedAddressError,
	ConfigurationError,
	PermanentError,
	RetryableError,
)
from integration_hub.engine.pagination import PaginationSpec, iter_records
from integration_hub.engine.redact import MASK
from integration_hub.engine.rest import RestClient, RestConfig

USERNAME = "erp-sync"
PASSWORD = "S3cret-pw!9"


class TokenServer:
	"""DRF ``obtain_auth_token`` (``/api-token-auth/``, ``Token``) or ZKBio Time's ``/jwt-api-token-auth/``
	(``JWT``): wrong credentials answer 400 ``non_field_errors``, an unknown token 401 ``detail``."""

	def __init__(self, server, login_path: str = "/jwt-api-token-auth/", scheme: str = "JWT") -> None:
		self.server = server
		self.login_path = login_path
		self.scheme = scheme
		self.counter = itertools.count(1)
		self.valid: set[str] = set()
		self.lock = threading.Lock()
		server.route(login_path, self.login, method="POST")
		server.route("/api/me/", lambda request: self.guarded(request, Reply.json({"user": USERNAME})))

	def login(self, request: RecordedRequest) -> Reply:
		body = request.json()
		if body != {"username": USERNAME, "password": PASSWORD}:
			return Reply.json({"non_field_errors": ["Unable to log in with provided credentials."]}, 400)
		with self.lock:
			token = f"{self.scheme.lower()}-token-{next(self.counter)}"
			self.valid.add(token)
		return Reply.json({"token": token})

	def authorized(self, request: RecordedRequest) -> bool:
		scheme, _, token = (request.header("Authorization") or "").partition(" ")
		with self.lock:
			return scheme == self.scheme and token in self.valid

	def guarded(self, request: RecordedRequest, reply: Reply) -> Reply:
		if self.authorized(request):
			return reply
		return Reply.json({"detail": "Signature has expired."}, 401)

	def expire_all(self) -> None:
		with self.lock:
			self.valid.clear()

	@property
	def logins(self) -> int:
		return len(self.server.received(self.login_path))


def login_auth(**overrides) -> AuthConfig:
	settings = {
		"kind": "login_token",
		"username": USERNAME,
		"password": PASSWORD,
		"login_url": "/jwt-api-token-auth/",
		"login_token_scheme": "JWT",
	}
	return AuthConfig(**{**settings, **overrides})


def make_client(server, connector_key, auth: AuthConfig, cache=None, base_path: str = "") -> RestClient:
	config = RestConfig(connector_key, server.base_url + base_path, auth=auth, allow_private_network=True)
	return RestClient(config, token_cache=cache if cache is not None else InMemoryTokenCache())


class FakeClock:
	def __init__(self) -> None:
		self.now = 1000.0

	def __call__(self) -> float:
		return self.now


def test_jwt_login_once_then_the_token_on_every_call(http_server, connector_key):
	tokens = TokenServer(http_server)
	client = make_client(http_server, connector_key, login_auth())
	for _ in range(5):
		assert client.request("GET", "/api/me/").raise_for_outcome().json() == {"user": USERNAME}
	assert tokens.logins == 1
	login = http_server.received("/jwt-api-token-auth/")[0]
	assert login.header("Content-Type") == "application/json"
	assert {request.header("Authorization") for request in http_server.received("/api/me/")} == {
		"JWT jwt-token-1"
	}


def test_drf_token_auth_with_the_token_scheme(http_server, connector_key):
	tokens = TokenServer(http_server, "/api-token-auth/", "Token")
	auth = login_auth(login_url="/api-token-auth/", login_token_scheme="Token")
	assert make_client(http_server, connector_key, auth).request("GET", "/api/me/").status_code == 200
	assert http_server.received("/api/me/")[0].header("Authorization") == "Token token-token-1"
	assert tokens.logins == 1


def test_relative_login_url_joins_the_base_url_like_every_path(http_server, connector_key):
	http_server.route(
		"/api/v2/auth/login", lambda request: Reply.json({"data": {"jwt": "t-9"}}), method="POST"
	)
	http_server.route(
		"/api/v2/items",
		lambda request: Reply.json([]) if request.header("Authorization") == "Bearer t-9" else Reply(401),
	)
	auth = login_auth(login_url="auth/login", login_token_path="data.jwt", login_token_scheme="Bearer")
	client = make_client(http_server, connector_key, auth, base_path="/api/v2")
	assert client.request("GET", "items").status_code == 200


def test_absolute_login_url_and_custom_field_names(http_server, connector_key):
	def login(request: RecordedRequest) -> Reply:
		ok = request.json() == {"email": USERNAME, "passwd": PASSWORD}
		return Reply.json({"token": "t-1"}) if ok else Reply.json({"detail": "no"}, 400)

	http_server.route("/session", login, method="POST")
	http_server.route("/api/x", lambda request: Reply.json({"seen": request.header("Authorization")}))
	auth = login_auth(
		login_url=http_server.url("/session"),
		login_username_field="email",
		login_password_field="passwd",
		login_token_scheme="Token",
	)
	client = make_client(http_server, connector_key, auth, base_path="/api")
	assert client.request("GET", "x").json() == {"seen": "Token t-1"}


def test_token_in_a_custom_header_is_sent_bare(http_server, connector_key):
	http_server.route("/login", Reply.json({"token": "t-7"}), method="POST")
	http_server.route(
		"/data",
		lambda request: Reply.json(
			{"auth": request.header("Authorization"), "token": request.header("X-Auth-Token")}
		),
	)
	auth = login_auth(login_url="/login", login_token_header="X-Auth-Token")
	assert make_client(http_server, connector_key, auth).request("GET", "/data").json() == {
		"auth": None,
		"token": "t-7",
	}


def test_expired_token_logs_in_again_once_and_retries_the_call(http_server, connector_key):
	tokens = TokenServer(http_server)
	client = make_client(http_server, connector_key, login_auth())
	client.request("GET", "/api/me/").raise_for_outcome()
	tokens.expire_all()
	response = client.request("GET", "/api/me/").raise_for_outcome()
	assert response.json() == {"user": USERNAME}
	assert tokens.logins == 2
	assert [request.header("Authorization") for request in http_server.received("/api/me/")] == [
		"JWT jwt-token-1",
		"JWT jwt-token-1",
		"JWT jwt-token-2",
	]


def test_a_second_401_is_a_permanent_error_not_a_loop(http_server, connector_key):
	tokens = TokenServer(http_server)
	http_server.route("/api/forbidden/", Reply.json({"detail": "Signature has expired."}, 401))
	client = make_client(http_server, connector_key, login_auth())
	with pytest.raises(PermanentError, match="401") as caught:
		client.request("GET", "/api/forbidden/").raise_for_outcome()
	assert caught.value.status_code == 401
	assert len(http_server.received("/api/forbidden/")) == 2
	assert tokens.logins == 2


def test_cached_token_is_used_until_its_ttl_runs_out(http_server, connector_key):
	tokens = TokenServer(http_server)
	clock = FakeClock()
	client = make_client(
		http_server, connector_key, login_auth(login_token_ttl=600), InMemoryTokenCache(clock)
	)
	client.request("GET", "/api/me/")
	clock.now += 599
	client.request("GET", "/api/me/")
	assert tokens.logins == 1
	clock.now += 2
	client.request("GET", "/api/me/")
	assert tokens.logins == 2


def test_lifetime_from_the_login_answer_wins_over_the_ttl(http_server, connector_key):
	http_server.route("/login", Reply.json({"token": "t-1", "expires_in": 60}), method="POST")
	http_server.route("/data", Reply.json({}))
	clock = FakeClock()
	auth = login_auth(login_url="/login", login_expires_in_path="expires_in")
	client = make_client(http_server, connector_key, auth, InMemoryTokenCache(clock))
	client.request("GET", "/data")
	clock.now += 61
	client.request("GET", "/data")
	assert len(http_server.received("/login")) == 2


def test_clients_of_one_connector_share_the_token(http_server, connector_key):
	tokens = TokenServer(http_server)
	cache = InMemoryTokenCache()
	make_client(http_server, connector_key, login_auth(), cache).request("GET", "/api/me/")
	make_client(http_server, connector_key, login_auth(), cache).request("GET", "/api/me/")
	make_client(http_server, connector_key + "-other", login_auth(), cache).request("GET", "/api/me/")
	assert tokens.logins == 2, "another connector logs in for itself"


def test_wrong_password_is_a_clear_permanent_error_without_the_password(http_server, connector_key):
	tokens = TokenServer(http_server)
	client = make_client(http_server, connector_key, login_auth(password="Wr0ng-pw!"))
	with pytest.raises(PermanentError) as caught:
		client.request("GET", "/api/me/")
	message = str(caught.value)
	assert "Unable to log in with provided credentials." in message
	assert "/jwt-api-token-auth/" in message and caught.value.status_code == 400
	assert "Wr0ng-pw!" not in message + repr(caught.value.args) + str(caught.value.response_excerpt)
	assert tokens.logins == 1 and http_server.received("/api/me/") == []


def test_login_answer_echoing_the_password_is_masked(http_server, connector_key):
	http_server.route(
		"/login", Reply.json({"detail": f"bad password {PASSWORD} for {USERNAME}"}, 401), method="POST"
	)
	with pytest.raises(PermanentError) as caught:
		make_client(http_server, connector_key, login_auth(login_url="/login")).request("GET", "/x")
	assert PASSWORD not in str(caught.value) and f"bad password {MASK}" in str(caught.value)


@pytest.mark.parametrize(
	("reply", "error", "text"),
	[
		(Reply.json({"detail": "maintenance"}, 503, {"Retry-After": "20"}), RetryableError, "503"),
		(Reply.json({"access": "x"}), ConfigurationError, "no token at 'token'"),
		(Reply(200, b"<html>login</html>"), ConfigurationError, "no token at 'token'"),
	],
)
def test_login_endpoint_failures(http_server, connector_key, reply, error, text):
	http_server.route("/login", reply, method="POST")
	with pytest.raises(error, match=text):
		make_client(http_server, connector_key, login_auth(login_url="/login")).request("GET", "/x")


def test_login_goes_through_the_address_guard(http_server, connector_key):
	auth = login_auth(login_url="http://169.254.169.254/latest/api/token")
	with pytest.raises(BlockedAddressError):
		make_client(http_server, connector_key, auth).request("GET", "/x")
	assert http_server.received("/x") == []


@pytest.mark.parametrize(
	"overrides", [{"login_url": ""}, {"username": ""}, {"password": ""}, {"login_token_path": ""}]
)
def test_incomplete_login_config_is_a_configuration_error(http_server, connector_key, overrides):
	with pytest.raises(ConfigurationError, match="Login-token auth needs"):
		make_client(http_server, connector_key, login_auth(**overrides))


def test_password_stays_out_of_repr_and_is_a_secret():
	auth = login_auth()
	assert PASSWORD not in repr(auth)
	assert PASSWORD in auth.secrets()


def test_preview_masks_the_token_header_without_logging_in(http_server, connector_key):
	tokens = TokenServer(http_server)
	auth = login_auth(login_token_header="X-Auth-Token")
	preview = make_client(http_server, connector_key, auth).prepare_preview("GET", "/api/me/")
	assert preview["headers"]["X-Auth-Token"] == MASK
	assert tokens.logins == 0


def test_zkbio_transactions_walk_survives_a_token_expiring_mid_walk(http_server, connector_key):
	tokens = TokenServer(http_server)
	punches = [{"id": n, "emp_code": "E1", "punch_time": f"2024-05-01 09:{n:02d}:00"} for n in range(1, 26)]
	zk = DrfList(http_server, "/iclock/api/transactions/", punches, records_key="data")
	expired = {"done": False}

	def transactions(request: RecordedRequest) -> Reply:
		if request.arg("page") == "2" and not expired["done"]:
			expired["done"] = True
			tokens.expire_all()
		return tokens.guarded(request, zk.answer(request))

	http_server.route("/iclock/api/transactions/", transactions)
	spec = PaginationSpec(style="page", records_path="data", size_param="page_size", page_size=10)
	client = make_client(http_server, connector_key, login_auth())
	records = list(iter_records(client, "/iclock/api/transactions/", spec))
	assert [record["id"] for record in records] == list(range(1, 26))
	assert tokens.logins == 2
