"""REST transport: pooled keep-alive sessions, SSRF guard, rate limit, auth and classified outcomes."""

from __future__ import annotations

import dataclasses
import hashlib
import json as jsonlib
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from integration_hub.engine.auth import (
	TOKEN_FETCHING_KINDS,
	AuthConfig,
	TokenCache,
	auth_header_names,
	build_auth,
)
from integration_hub.engine.errors import (
	BlockedAddressError,
	ConfigurationError,
	GoneError,
	MappingError,
	PermanentError,
	RetryableError,
)
from integration_hub.engine.limits import deadline_exceeded, read_limited, total_deadline
from integration_hub.engine.netguard import GuardedSession, origin_of
from integration_hub.engine.policy import Outcome, classify_status
from integration_hub.engine.ratelimit import InProcessRateLimiter, RateLimiter
from integration_hub.engine.redact import MASK, redact_headers, redact_mapping, redact_text
from integration_hub.engine.signing import OutboundSigner

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
USER_AGENT = "IntegrationHub/1.0 (+ERPNext)"
ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
QUERY_IN_TEXT = re.compile(r"\?[^\s'\")]*")


@dataclass
class RestConfig:
	connector_key: str
	base_url: str
	auth: AuthConfig = field(default_factory=AuthConfig)
	connect_timeout: float = 5.0
	read_timeout: float = 30.0
	verify_tls: bool = True
	default_headers: dict[str, str] = field(default_factory=dict, repr=False)
	allow_private_network: bool = False
	rate_limit_per_second: int = 0
	pool_size: int = 10
	total_timeout: float = 0.0
	"""Most seconds one exchange (connect, send, whole reply) may take; 0 means connect + 2 * read."""
	signer: OutboundSigner | None = field(default=None, repr=False)
	"""Signs every request body (Standard Webhooks or an HMAC header) when the connector has a signing secret."""

	def deadline(self) -> float:
		return total_deadline(self.connect_timeout, self.read_timeout, self.total_timeout)

	def fingerprint(self) -> str:
		"""Changes whenever a setting that shapes the session changes, so an edit gets a fresh session."""
		material = {
			"base_url": self.base_url,
			"auth": dataclasses.asdict(self.auth),
			"verify_tls": self.verify_tls,
			"default_headers": self.default_headers,
			"allow_private_network": self.allow_private_network,
			"pool_size": self.pool_size,
			"deadline": self.deadline(),
		}
		return hashlib.sha256(jsonlib.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass
class RestResponse:
	status_code: int
	headers: dict[str, str]
	body: bytes
	elapsed_ms: float
	outcome: Outcome
	secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

	def json(self) -> Any:
		"""The parsed JSON body, or None when the body is empty or not JSON."""
		if not self.body:
			return None
		try:
			return jsonlib.loads(self.body)
		except (ValueError, RecursionError):
			return None

	def text_excerpt(self, limit: int = 2000) -> str:
		"""The start of the body as text, with the connector's secrets masked (for logs)."""
		text = self.body[: limit * 4].decode("utf-8", errors="replace")
		text = redact_text(text, self.secrets)
		return text if len(text) <= limit else text[:limit] + "…"

	def raise_for_outcome(self) -> RestResponse:
		"""Return self on success; raise RetryableError / GoneError / PermanentError otherwise."""
		kind = self.outcome.kind
		if kind == "success":
			return self
		error_class = {"retry": RetryableError, "gone": GoneError}.get(kind, PermanentError)
		raise error_class(
			self.outcome.message,
			status_code=self.status_code,
			retry_after=self.outcome.retry_after,
			response_excerpt=self.text_excerpt(500),
		)


SESSIONS: dict[str, tuple[str, GuardedSession]] = {}
LIMITERS: dict[tuple[str, int], InProcessRateLimiter] = {}
REGISTRY_LOCK = threading.Lock()


def new_session(config: RestConfig) -> GuardedSession:
	session = GuardedSession(config.allow_private_network, config.deadline(), config.pool_size)
	session.verify = config.verify_tls
	session.headers["User-Agent"] = USER_AGENT
	session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
	return session


def session_for(config: RestConfig) -> GuardedSession:
	"""The process-wide pooled session of this connector; a changed config replaces (and closes) the old one."""
	fingerprint = config.fingerprint()
	with REGISTRY_LOCK:
		current = SESSIONS.get(config.connector_key)
		if current and current[0] == fingerprint:
			return current[1]
		session = new_session(config)
		SESSIONS[config.connector_key] = (fingerprint, session)
	if current:
		current[1].close()
	return session


def shared_rate_limiter(connector_key: str, rate: int) -> InProcessRateLimiter:
	with REGISTRY_LOCK:
		return LIMITERS.setdefault((connector_key, rate), InProcessRateLimiter(rate))


def close_sessions() -> None:
	"""Close every pooled session (tests, worker shutdown)."""
	with REGISTRY_LOCK:
		sessions = [session for _fingerprint, session in SESSIONS.values()]
		SESSIONS.clear()
	for session in sessions:
		session.close()


class SigningAuth(AuthBase):
	"""Runs the connector's own auth, then signs the prepared body exactly as it goes on the wire.

	``msg_id`` becomes Standard Webhooks' ``webhook-id``: the row's idempotency key, so every retry of one
	delivery carries the same id and the receiver can drop duplicates; the timestamp is taken at sending.
	"""

	def __init__(self, inner: AuthBase | None, signer: OutboundSigner, msg_id: str) -> None:
		self.inner = inner
		self.signer = signer
		self.msg_id = msg_id

	def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
		if self.inner is not None:
			r = self.inner(r)
		r.headers.update(self.signer.signature_headers(body_bytes(r.body), self.msg_id, int(time.time())))
		return r


def body_bytes(body: Any) -> bytes:
	if body is None:
		return b""
	if isinstance(body, bytes):
		return body
	if isinstance(body, str):
		return body.encode("utf-8")
	raise ConfigurationError("A streamed request body cannot be signed; send JSON or form data")


def new_message_id() -> str:
	"""A message id for a signed request that belongs to no outbox row (a pull, a health check)."""
	return f"msg_{uuid.uuid4().hex}"


class RestClient:
	"""Calls one connector's REST API. Cheap to create: the session, limiter and tokens are shared."""

	def __init__(
		self,
		config: RestConfig,
		rate_limiter: RateLimiter | None = None,
		token_cache: TokenCache | None = None,
	) -> None:
		if not config.base_url:
			raise ConfigurationError(f"Connector {config.connector_key!r} has no base URL")
		self.config = config
		self.session = session_for(config)
		self.timeout = (config.connect_timeout, config.read_timeout)
		self.auth = build_auth(
			config.auth, self.session, self.timeout, token_cache, self.url_for, config.connector_key
		)
		if rate_limiter is None and config.rate_limit_per_second > 0:
			rate_limiter = shared_rate_limiter(config.connector_key, config.rate_limit_per_second)
		self.rate_limiter = rate_limiter
		signing_secrets = config.signer.secrets if config.signer else []
		self.secrets = (*config.auth.secrets(), *signing_secrets)

	def url_for(self, path_or_url: str) -> str:
		"""``base_url`` joined with a path; an absolute URL is kept only when it is on the base URL's origin."""
		if ABSOLUTE_URL.match(path_or_url):
			if origin_of(path_or_url) != origin_of(self.config.base_url):
				raise BlockedAddressError(
					f"URL {host_of(path_or_url)} is not on the origin of the connector's base URL "
					f"({host_of(self.config.base_url)}); give a path relative to the base URL"
				)
			return path_or_url
		if not path_or_url:
			return self.config.base_url
		return self.config.base_url.rstrip("/") + "/" + path_or_url.lstrip("/")

	def request_auth(self, idempotency_key: str | None) -> AuthBase | None:
		"""The auth for one request: the connector's auth, followed by the signer when there is one."""
		if self.config.signer is None:
			return self.auth
		return SigningAuth(self.auth, self.config.signer, idempotency_key or new_message_id())

	def masked_header_names(self) -> list[str]:
		signature_headers = self.config.signer.secret_header_names() if self.config.signer else []
		return [*auth_header_names(self.config.auth), *signature_headers]

	def merged_headers(self, headers: dict[str, str] | None, idempotency_key: str | None) -> dict[str, str]:
		merged = {"Accept": "application/json", **self.config.default_headers, **(headers or {})}
		if idempotency_key:
			merged["Idempotency-Key"] = idempotency_key
		return merged

	def request(
		self,
		method: str,
		path_or_url: str,
		*,
		json: Any = None,
		data: Any = None,
		params: dict[str, Any] | None = None,
		headers: dict[str, str] | None = None,
		idempotency_key: str | None = None,
	) -> RestResponse:
		"""Send one request. HTTP statuses never raise: they come back classified in ``outcome``.

		Raises BlockedAddressError / ConfigurationError for a refused URL, RetryableError for
		timeouts and connection failures, PermanentError for an oversized body or a bad certificate.
		"""
		url = self.url_for(path_or_url)
		if self.rate_limiter is not None:
			self.rate_limiter.acquire(self.config.connector_key)
		started = time.perf_counter()
		try:
			response = self.session.request(
				method.upper(),
				url,
				json=json,
				data=data,
				params=params,
				headers=self.merged_headers(headers, idempotency_key),
				auth=self.request_auth(idempotency_key),
				timeout=self.timeout,
				allow_redirects=False,
				stream=True,
			)
			with response:
				body = self.read_body(response, url)
		except requests.RequestException as exc:
			raise self.transport_error(exc, url, started) from None
		except (ValueError, TypeError) as exc:
			raise self.build_error(exc, url) from None
		elapsed_ms = (time.perf_counter() - started) * 1000
		response_headers = dict(response.headers)
		excerpt = redact_text(body[:4000].decode("utf-8", errors="replace"), self.secrets)
		outcome = classify_status(response.status_code, response_headers, excerpt)
		return RestResponse(response.status_code, response_headers, body, elapsed_ms, outcome, self.secrets)

	def read_body(self, response: requests.Response, url: str) -> bytes:
		return read_limited(response, MAX_RESPONSE_BYTES, f"Response from {host_of(url)}")

	def build_error(self, exc: ValueError | TypeError, url: str) -> Exception:
		"""A request that could not be sent at all: a payload that is not JSON, a header that is not text."""
		reason = redact_text(str(exc), self.secrets)[:300]
		if isinstance(exc, TypeError):
			return MappingError(f"The payload for {host_of(url)} cannot be sent as JSON: {reason}")
		return ConfigurationError(
			f"The request to {host_of(url)} cannot be built: {type(exc).__name__}: {reason}"
		)

	def transport_error(self, exc: requests.RequestException, url: str, started: float) -> Exception:
		"""A clear, secret-free error for a failed exchange."""
		host = host_of(url)
		reason = QUERY_IN_TEXT.sub("?…", redact_text(str(exc), self.secrets))[:300]
		connect, read = self.timeout
		deadline = deadline_exceeded(self.session, started, time.perf_counter())
		if deadline is not None:
			return RetryableError(
				f"The exchange with {host} did not finish within its total deadline of {deadline:g}s"
			)
		if isinstance(exc, requests.ConnectTimeout):
			return RetryableError(f"Connecting to {host} timed out after {connect:g}s")
		if isinstance(exc, requests.ReadTimeout) or "Read timed out" in reason:
			return RetryableError(f"No response from {host} within {read:g}s (read timeout)")
		if isinstance(exc, requests.exceptions.SSLError):
			if "CERTIFICATE_VERIFY_FAILED" in reason:
				return PermanentError(f"TLS certificate of {host} could not be verified: {reason}")
			return RetryableError(f"TLS handshake with {host} failed: {reason}")
		if isinstance(exc, requests.exceptions.InvalidJSONError):
			return MappingError(f"The payload for {host} cannot be sent as JSON: {reason}")
		if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
			return ConfigurationError(f"Invalid URL for {host}: {reason}")
		if isinstance(exc, requests.exceptions.InvalidHeader):
			return ConfigurationError(f"Invalid header for {host}: {reason}")
		if isinstance(
			exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
		):
			return RetryableError(f"Response from {host} was cut off or garbled: {reason}")
		return RetryableError(f"Could not reach {host}: {connection_failure(exc) or reason}")

	def prepare_preview(
		self,
		method: str,
		path: str,
		json: Any = None,
		headers: dict[str, str] | None = None,
		idempotency_key: str | None = None,
	) -> dict[str, Any]:
		"""The request as it would be sent, with credentials masked; makes no network call.

		The JSON body is returned as data (not its serialised text) so that a log or the Desk shows it readably.
		Anything that stops the request from being built is a ConfigurationError with a secret-free message.
		"""
		try:
			request = requests.Request(
				method.upper(),
				self.url_for(path),
				json=json,
				headers=self.merged_headers(headers, idempotency_key),
			).prepare()
		except (requests.RequestException, ValueError, TypeError) as exc:
			reason = redact_text(str(exc), self.secrets)[:300]
			raise ConfigurationError(f"The request cannot be built: {type(exc).__name__}: {reason}") from None
		auth = None if self.config.auth.kind in TOKEN_FETCHING_KINDS else self.auth
		if self.config.signer is not None:
			auth = SigningAuth(auth, self.config.signer, idempotency_key or new_message_id())
		if auth is not None:
			request = auth(request)
		masked = self.masked_header_names()
		shown_headers = {**request.headers, **dict.fromkeys(masked, MASK)}
		return {
			"method": request.method,
			"url": redact_text(request.url or "", self.secrets),
			"headers": redact_headers(shown_headers, masked),
			"body": None if json is None else redact_mapping(json, self.secrets),
		}

	def health_check(self, method: str = "GET", path: str = "/") -> RestResponse:
		return self.request(method, path)


def connection_failure(exc: BaseException) -> str:
	"""The innermost OS-level reason of a connection failure ("Connection refused"), without urllib3's wrapping."""
	seen = set()
	current: BaseException | None = exc
	while current is not None and id(current) not in seen:
		seen.add(id(current))
		if isinstance(current, OSError) and current.strerror:
			return current.strerror
		nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
		current = getattr(current, "reason", None) or nested or current.__cause__ or current.__context__
	return ""


def host_of(url: str) -> str:
	try:
		parts = urlsplit(url)
		return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
	except ValueError:
		return "(invalid URL)"
