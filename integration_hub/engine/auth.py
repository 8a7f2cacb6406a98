"""Outbound authentication as requests ``AuthBase`` objects, including cached tokens: OAuth2 client
credentials, and a token from a login endpoint (DRF ``api-token-auth``, JWT logins)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from integration_hub.engine.errors import (
	ConfigurationError,
	IntegrationError,
	PermanentError,
	RetryableError,
)
from integration_hub.engine.jsonpath import compile_path, optional_path
from integration_hub.engine.limits import deadline_exceeded, read_limited
from integration_hub.engine.policy import classify_status, remote_message
from integration_hub.engine.redact import redact_text

AuthKind = Literal["none", "api_key", "bearer", "basic", "oauth2_client_credentials", "login_token"]
Timeout = tuple[float, float]
TOKEN_FETCHING_KINDS = ("oauth2_client_credentials", "login_token")
"""Kinds whose auth object fetches a token over the network when it is applied to a request."""

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
	login_url: str = ""
	"""Login-token auth: where ``username``/``password`` are POSTed as JSON; absolute, or relative to the
	connector's base URL (joined like every request path)."""
	login_username_field: str = "username"
	login_password_field: str = "password"
	login_token_path: str = "token"
	"""JMESPath to the token in the login answer."""
	login_token_scheme: str = "Token"
	"""Word before the token in ``Authorization``: "Token" (DRF), "JWT" (ZKBio Time), "Bearer"; "" for none."""
	login_token_header: str = ""
	"""Send the bare token in this header instead of ``Authorization``."""
	login_token_ttl: float = 3600.0
	"""Seconds a token is reused before logging in again (a 401 also logs in again, once)."""
	login_expires_in_path: str = ""
	"""JMESPath to a lifetime in seconds in the login answer; when present it wins over ``login_token_ttl``."""

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


class CachedTokenAuth(AuthBase):
	"""A token fetched on demand and cached under ``cache_key`` (shared by every client of that key).

	A 401 answer drops the cached token and sends the same request once more with a fresh one; the retry
	goes straight to the connection, so a second 401 is returned as it is, never retried again.
	"""

	header_name = "Authorization"

	def __init__(
		self, session: requests.Session, timeout: Timeout, cache: TokenCache | None, cache_key: str
	) -> None:
		self.session = session
		self.timeout = timeout
		self.cache = cache if cache is not None else DEFAULT_TOKEN_CACHE
		self.cache_key = cache_key

	def header_value(self, token: str) -> str:
		return f"Bearer {token}"

	def fetch_token(self) -> tuple[str, float]:
		"""A new token and how many seconds it may be cached."""
		raise NotImplementedError

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		r.headers[self.header_name] = self.header_value(self.access_token())
		r.register_hook("response", self.retry_on_401)
		return r

	def access_token(self, refused: str | None = None) -> str:
		"""A valid token: the cached one unless it expired or the remote ``refused`` it (as this header value)."""
		cached = self.cache.get(self.cache_key)
		if cached and self.header_value(cached) != refused:
			return cached
		with fetch_lock(self.cache_key):
			cached = self.cache.get(self.cache_key)
			if cached and self.header_value(cached) != refused:
				return cached
			if cached:
				self.cache.delete(self.cache_key)
			token, lifetime = self.fetch_token()
			self.cache.set(self.cache_key, token, lifetime)
			return token

	def retry_on_401(self, response: requests.Response, **kwargs) -> requests.Response:
		if response.status_code != 401:
			return response
		fresh = self.access_token(refused=response.request.headers.get(self.header_name))
		response.content  # noqa: B018 -- drain the body so the connection goes back to the pool
		response.close()
		retry = response.request.copy()
		retry.headers[self.header_name] = self.header_value(fresh)
		second = response.connection.send(retry, **kwargs)
		second.history.append(response)
		second.request = retry
		return second

	def post(self, url: str, where: str, secrets: list[str], **kwargs) -> requests.Response:
		"""POST to a token endpoint through the guarded session: the timeout and total deadline, the answer
		read up to ``MAX_TOKEN_RESPONSE_BYTES``, never following redirects."""
		started = time.perf_counter()
		try:
			response = self.session.post(
				url, timeout=self.timeout, allow_redirects=False, stream=True, **kwargs
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
			raise RetryableError(f"{where} unreachable: {redact_text(str(exc), secrets)}") from None
		return response


def configuration_refusal(message: str, status_code: int) -> IntegrationError:
	return ConfigurationError(message)


def permanent_refusal(message: str, status_code: int) -> IntegrationError:
	return PermanentError(message, status_code=status_code)


def token_answer(
	response: requests.Response,
	where: str,
	secrets: list[str],
	refusal: Callable[[str, int], IntegrationError],
) -> object:
	"""The parsed JSON of a successful token answer (None if not JSON); a 400/401/403 raises ``refusal``."""
	body_text = redact_text(response.text[:2000], secrets)
	outcome = classify_status(response.status_code, response.headers, body_text)
	if outcome.kind == "retry":
		raise RetryableError(
			f"{where} answered {outcome.message}",
			status_code=response.status_code,
			retry_after=outcome.retry_after,
		)
	if response.status_code in (400, 401, 403):
		reason = remote_message(body_text) or outcome.message
		raise refusal(f"{where} refused the credentials: {reason}", response.status_code)
	if outcome.kind != "success":
		raise PermanentError(f"{where} answered {outcome.message}", status_code=response.status_code)
	try:
		return response.json()
	except ValueError:
		return None


class OAuth2ClientCredentialsAuth(CachedTokenAuth):
	"""Bearer token from the client-credentials grant, cached until shortly before it expires."""

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
		identity = "\n".join((config.token_url, config.client_id, config.scope, config.audience))
		cache_key = "integration_hub:oauth2:" + hashlib.sha256(identity.encode()).hexdigest()
		super().__init__(session, timeout, cache, cache_key)
		self.config = config

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
		response = self.post(config.token_url, where, config.secrets(), data=form, headers=headers)
		payload = token_answer(response, where, config.secrets(), configuration_refusal)
		token = payload.get("access_token") if isinstance(payload, dict) else None
		if not isinstance(token, str) or not token:
			raise ConfigurationError(f"{where} answered without an access_token")
		try:
			expires_in = float(payload.get("expires_in") or TOKEN_DEFAULT_LIFETIME)
		except (TypeError, ValueError):
			expires_in = TOKEN_DEFAULT_LIFETIME
		return token, cache_lifetime(expires_in)


class LoginTokenAuth(CachedTokenAuth):
	"""A token got by POSTing username and password as JSON to a login endpoint, sent as
	``Authorization: <scheme> <token>`` (or bare in ``login_token_header``), cached per connector."""

	def __init__(
		self,
		config: AuthConfig,
		session: requests.Session,
		timeout: Timeout,
		cache: TokenCache | None = None,
		url_for: Callable[[str], str] | None = None,
		cache_scope: str = "",
	) -> None:
		if not (config.login_url and config.username and config.password and config.login_token_path):
			raise ConfigurationError(
				"Login-token auth needs a login URL, a username, a password and a token path"
			)
		self.login_url = absolute_login_url(config.login_url, url_for)
		identity = "\n".join((cache_scope, self.login_url, config.username))
		super().__init__(
			session, timeout, cache, "integration_hub:login:" + hashlib.sha256(identity.encode()).hexdigest()
		)
		self.config = config
		self.header_name = config.login_token_header or "Authorization"
		self.token_path = compile_path(config.login_token_path, "login token path")
		self.expires_in_path = optional_path(config.login_expires_in_path, "login expiry path")

	def header_value(self, token: str) -> str:
		scheme = self.config.login_token_scheme.strip()
		if self.config.login_token_header or not scheme:
			return token
		return f"{scheme} {token}"

	def fetch_token(self) -> tuple[str, float]:
		config = self.config
		where = f"Login at {self.login_url}"
		credentials = {
			config.login_username_field: config.username,
			config.login_password_field: config.password,
		}
		response = self.post(
			self.login_url, where, config.secrets(), json=credentials, headers={"Accept": "application/json"}
		)
		payload = token_answer(response, where, config.secrets(), permanent_refusal)
		token = self.token_path.search(payload)
		if not isinstance(token, str) or not token:
			raise ConfigurationError(f"{where} answered with no token at {config.login_token_path!r}")
		return token, self.lifetime(payload)

	def lifetime(self, payload: object) -> float:
		"""``login_expires_in_path`` (less a safety margin) when the answer has it, else ``login_token_ttl``."""
		found = self.expires_in_path.search(payload) if self.expires_in_path is not None else None
		expires_in = as_seconds(found)
		if expires_in is None:
			return max(float(self.config.login_token_ttl), 0.0)
		return cache_lifetime(expires_in)


def cache_lifetime(expires_in: float) -> float:
	"""How long to cache a token that expires in ``expires_in`` seconds: drop it a little before it expires."""
	return max(expires_in - min(TOKEN_EXPIRY_SKEW, expires_in / 2), 0.0)


def as_seconds(value: object) -> float | None:
	"""A number of seconds from a JSON number or numeric text; None for anything else."""
	if isinstance(value, bool) or not isinstance(value, int | float | str):
		return None
	try:
		return float(value)
	except ValueError:
		return None


def absolute_login_url(login_url: str, url_for: Callable[[str], str] | None) -> str:
	"""The login URL as the client joins any path (relative → under the base URL), or as given if absolute."""
	if urlsplit(login_url).scheme:
		return login_url
	if url_for is None:
		raise ConfigurationError(
			f"Login URL {login_url!r} is relative, but there is no base URL to join it to"
		)
	return url_for(login_url)


def build_auth(
	config: AuthConfig,
	session: requests.Session,
	timeout: Timeout,
	token_cache: TokenCache | None = None,
	url_for: Callable[[str], str] | None = None,
	cache_scope: str = "",
) -> AuthBase | None:
	"""The requests auth object for ``config`` (None for ``kind="none"``).

	``url_for`` turns a relative login URL into an absolute one (RestClient.url_for); ``cache_scope`` (the
	connector key) keeps login tokens of different connectors apart.
	"""
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
	if config.kind == "login_token":
		return LoginTokenAuth(config, session, timeout, token_cache, url_for, cache_scope)
	raise ConfigurationError(f"Unknown auth kind {config.kind!r}")


def auth_header_names(config: AuthConfig) -> list[str]:
	"""Header names the auth will set, so a preview can show them masked without fetching tokens."""
	if config.kind == "api_key":
		return [config.api_key_name] if config.api_key_in == "header" else []
	if config.kind in ("bearer", "basic", "oauth2_client_credentials"):
		return ["Authorization"]
	if config.kind == "login_token":
		return [config.login_token_header or "Authorization"]
	return []
