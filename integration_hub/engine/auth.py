"""Outbound authentication as requests ``AuthBase`` objects, including cached OAuth2 client credentials."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import requests
from requests.auth import AuthBase

from integration_hub.engine.errors import ConfigurationError, PermanentError, RetryableError
from integration_hub.engine.limits import deadline_exceeded, read_limited
from integration_hub.engine.policy import classify_status, remote_message
from integration_hub.engine.redact import redact_text

AuthKind = Literal["none", "api_key", "bearer", "basic", "oauth2_client_credentials"]
Timeout = tuple[float, float]

TOKEN_EXPIRY_SKEW = 30.0
TOKEN_DEFAULT_LIFETIME = 300.0
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024


@dataclass
class AuthConfig:
	"""How a connector authenticates. Secret fields are kept out of ``repr`` so they never reach a log."""

	kind: AuthKind = "none"
	api_key: str = field(default="", repr=False)
	api_key_name: str = "X-API-Key"
	api_key_in: Literal["header", "query"] = "header"
	token: str = field(default="", repr=False)
	username: str = ""
	password: str = field(default="", repr=False)
	client_id: str = ""
	client_secret: str = field(default="", repr=False)
	token_url: str = ""
	scope: str = ""
	audience: str = ""
	client_auth: Literal["basic", "body"] = "basic"
	"""OAuth2 client authentication at the token endpoint: HTTP Basic (RFC 6749 §2.3.1) or form fields."""

	def secrets(self) -> list[str]:
		"""Every secret value this config holds, for redaction."""
		return [value for value in (self.api_key, self.token, self.password, self.client_secret) if value]


class TokenCache(Protocol):
	"""Where OAuth2 access tokens are kept between calls; the Frappe side may back this with Redis."""

	def get(self, key: str) -> str | None: ...

	def set(self, key: str, token: str, ttl: float) -> None: ...

	def delete(self, key: str) -> None: ...


class InMemoryTokenCache:
	"""A process-local TokenCache; entries expire after their ttl on the given clock."""

	def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
		self.clock = clock
		self.entries: dict[str, tuple[str, float]] = {}
		self.lock = threading.Lock()

	def get(self, key: str) -> str | None:
		with self.lock:
			entry = self.entries.get(key)
			if entry is None:
				return None
			token, expires_at = entry
			if self.clock() >= expires_at:
				del self.entries[key]
				return None
			return token

	def set(self, key: str, token: str, ttl: float) -> None:
		with self.lock:
			self.entries[key] = (token, self.clock() + ttl)

	def delete(self, key: str) -> None:
		with self.lock:
			self.entries.pop(key, None)


DEFAULT_TOKEN_CACHE = InMemoryTokenCache()
FETCH_LOCKS: dict[str, threading.Lock] = {}
FETCH_LOCKS_GUARD = threading.Lock()


def fetch_lock(key: str) -> threading.Lock:
	with FETCH_LOCKS_GUARD:
		return FETCH_LOCKS.setdefault(key, threading.Lock())


class ApiKeyAuth(AuthBase):
	def __init__(self, name: str, value: str, location: Literal["header", "query"] = "header") -> None:
		self.name = name
		self.value = value
		self.location = location

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		if self.location == "query":
			r.prepare_url(r.url, {self.name: self.value})
		else:
			r.headers[self.name] = self.value
		return r


class BearerAuth(AuthBase):
	def __init__(self, token: str) -> None:
		self.token = token

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		r.headers["Authorization"] = f"Bearer {self.token}"
		return r


def basic_credentials(username: str, password: str) -> str:
	"""``Basic`` header value, UTF-8 encoded as RFC 7617 recommends (requests would use latin-1)."""
	raw = f"{username}:{password}".encode()
	return "Basic " + base64.b64encode(raw).decode("ascii")


class BasicAuth(AuthBase):
	def __init__(self, username: str, password: str) -> None:
		self.username = username
		self.password = password

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		r.headers["Authorization"] = basic_credentials(self.username, self.password)
		return r


class OAuth2ClientCredentialsAuth(AuthBase):
	"""Bearer token from the client-credentials grant, cached until shortly before it expires.

	A 401 answer drops the cached token and sends the same request once more with a fresh one.
	"""

	def __init__(
		self,
		config: AuthConfig,
		session: requests.Session,
		timeout: Timeout,
		cache: TokenCache | None = None,
	) -> None:
		if not (config.token_url and config.client_id and config.client_secret):
			raise ConfigurationError(
				"OAuth2 client credentials need a token URL, a client id and a client secret"
			)
		self.config = config
		self.session = session
		self.timeout = timeout
		self.cache = cache if cache is not None else DEFAULT_TOKEN_CACHE
		identity = "\n".join((config.token_url, config.client_id, config.scope, config.audience))
		self.cache_key = "integration_hub:oauth2:" + hashlib.sha256(identity.encode()).hexdigest()

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		token = self.access_token()
		r.headers["Authorization"] = f"Bearer {token}"
		r.register_hook("response", self.retry_on_401)
		return r

	def access_token(self, stale: str | None = None) -> str:
		"""A valid token: the cached one unless it is ``stale`` (refused by the remote) or expired."""
		cached = self.cache.get(self.cache_key)
		if cached and cached != stale:
			return cached
		with fetch_lock(self.cache_key):
			cached = self.cache.get(self.cache_key)
			if cached and cached != stale:
				return cached
			if cached:
				self.cache.delete(self.cache_key)
			token, lifetime = self.fetch_token()
			self.cache.set(self.cache_key, token, lifetime)
			return token

	def retry_on_401(self, response: requests.Response, **kwargs) -> requests.Response:
		if response.status_code != 401:
			return response
		used = str(response.request.headers.get("Authorization", "")).removeprefix("Bearer ")
		fresh = self.access_token(stale=used)
		response.content  # noqa: B018 -- drain the body so the connection goes back to the pool
		response.close()
		retry = response.request.copy()
		retry.headers["Authorization"] = f"Bearer {fresh}"
		second = response.connection.send(retry, **kwargs)
		second.history.append(response)
		second.request = retry
		return second

	def fetch_token(self) -> tuple[str, float]:
		"""Ask the token endpoint; returns the token and how long it may be cached."""
		config = self.config
		form = {"grant_type": "client_credentials"}
		if config.scope:
			form["scope"] = config.scope
		if config.audience:
			form["audience"] = config.audience
		headers = {"Accept": "application/json"}
		if config.client_auth == "body":
			form.update(client_id=config.client_id, client_secret=config.client_secret)
		else:
			headers["Authorization"] = basic_credentials(config.client_id, config.client_secret)
		where = f"OAuth2 token endpoint {config.token_url}"
		started = time.perf_counter()
		try:
			response = self.session.post(
				config.token_url,
				data=form,
				headers=headers,
				timeout=self.timeout,
				allow_redirects=False,
				stream=True,
			)
			with response:
				read_limited(response, MAX_TOKEN_RESPONSE_BYTES, f"The answer of {where}")
		except requests.RequestException as exc:
			deadline = deadline_exceeded(self.session, started, time.perf_counter())
			if deadline is not None:
				raise RetryableError(
					f"{where} did not answer within its total deadline of {deadline:g}s"
				) from None
			if isinstance(exc, requests.Timeout):
				raise RetryableError(f"{where} timed out") from None
			reason = redact_text(str(exc), config.secrets())
			raise RetryableError(f"{where} unreachable: {reason}") from None
		return self.parse_token_response(response)

	def parse_token_response(self, response: requests.Response) -> tuple[str, float]:
		config = self.config
		body_text = redact_text(response.text[:2000], config.secrets())
		outcome = classify_status(response.status_code, response.headers, body_text)
		where = f"OAuth2 token endpoint {config.token_url}"
		if outcome.kind == "retry":
			raise RetryableError(
				f"{where} answered {outcome.message}",
				status_code=response.status_code,
				retry_after=outcome.retry_after,
			)
		if response.status_code in (400, 401, 403):
			reason = remote_message(body_text) or outcome.message
			raise ConfigurationError(f"{where} refused the client credentials: {reason}")
		if outcome.kind != "success":
			raise PermanentError(f"{where} answered {outcome.message}", status_code=response.status_code)
		try:
			payload = response.json()
		except ValueError:
			payload = None
		token = payload.get("access_token") if isinstance(payload, dict) else None
		if not isinstance(token, str) or not token:
			raise ConfigurationError(f"{where} answered without an access_token")
		try:
			expires_in = float(payload.get("expires_in") or TOKEN_DEFAULT_LIFETIME)
		except (TypeError, ValueError):
			expires_in = TOKEN_DEFAULT_LIFETIME
		return token, max(expires_in - min(TOKEN_EXPIRY_SKEW, expires_in / 2), 0.0)


def build_auth(
	config: AuthConfig,
	session: requests.Session,
	timeout: Timeout,
	token_cache: TokenCache | None = None,
) -> AuthBase | None:
	"""The requests auth object for ``config`` (None for ``kind="none"``)."""
	if config.kind == "none":
		return None
	if config.kind == "api_key":
		if not (config.api_key and config.api_key_name):
			raise ConfigurationError("API key auth needs a key and a header/parameter name")
		return ApiKeyAuth(config.api_key_name, config.api_key, config.api_key_in)
	if config.kind == "bearer":
		if not config.token:
			raise ConfigurationError("Bearer auth needs a token")
		return BearerAuth(config.token)
	if config.kind == "basic":
		if not config.username:
			raise ConfigurationError("Basic auth needs a username")
		return BasicAuth(config.username, config.password)
	if config.kind == "oauth2_client_credentials":
		return OAuth2ClientCredentialsAuth(config, session, timeout, token_cache)
	raise ConfigurationError(f"Unknown auth kind {config.kind!r}")


def auth_header_names(config: AuthConfig) -> list[str]:
	"""Header names the auth will set, so a preview can show them masked without fetching tokens."""
	if config.kind == "api_key":
		return [config.api_key_name] if config.api_key_in == "header" else []
	if config.kind in ("bearer", "basic", "oauth2_client_credentials"):
		return ["Authorization"]
	return []
