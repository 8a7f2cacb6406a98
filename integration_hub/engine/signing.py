"""Webhook signatures: Standard Webhooks (outbound and inbound), Stripe's scheme, and a generic HMAC header.

Verification only ever raises :class:`SignatureError` for bad input (headers, body), each failure with
its own ``code``; a misconfigured secret is a :class:`ConfigurationError`. All comparisons are
constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook

from integration_hub.engine.errors import ConfigurationError, SignatureError

WHSEC_PREFIX = "whsec_"
TIMESTAMP_PATTERN = re.compile(r"^[0-9]{1,12}$")
HMAC_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")

Scheme = Literal["standard_webhooks", "stripe", "hmac"]
OutboundScheme = Literal["standard_webhooks", "hmac"]


@dataclass(frozen=True)
class VerifiedEvent:
	event_id: str | None
	timestamp: int | None


def find_header(headers: Mapping[str, str], name: str) -> str | None:
	"""Case-insensitive header lookup; never raises for odd header containers."""
	wanted = name.lower()
	for key, value in headers.items():
		if str(key).lower() == wanted:
			return str(value)
	return None


def require_header(headers: Mapping[str, str], name: str) -> str:
	value = find_header(headers, name)
	if value is None or not value.strip():
		raise SignatureError(SignatureError.MISSING_HEADER, f"The {name} header is missing")
	try:
		value.encode("utf-8")
	except UnicodeEncodeError:
		raise SignatureError(
			SignatureError.MALFORMED_HEADER, f"The {name} header is not valid text"
		) from None
	return value.strip()


def secret_list(secrets: str | Sequence[str]) -> list[str]:
	"""The usable secrets: a single secret must not be blank; blank ones in a rotation list are skipped."""
	found = (
		[secrets] if isinstance(secrets, str) else [secret for secret in secrets if secret and secret.strip()]
	)
	if not found or not all(secret.strip() for secret in found):
		raise ConfigurationError(
			"No webhook secret is configured (an empty or whitespace-only secret is refused)"
		)
	return found


def check_timestamp(value: str, header: str, tolerance: int, now: float | None) -> int:
	"""Parse an epoch-seconds timestamp and refuse it when outside ``now ± tolerance``."""
	if not TIMESTAMP_PATTERN.match(value):
		raise SignatureError(SignatureError.MALFORMED_HEADER, f"The {header} timestamp is not a whole number")
	timestamp = int(value)
	current = time.time() if now is None else now
	if timestamp < current - tolerance:
		raise SignatureError(
			SignatureError.STALE_TIMESTAMP, f"The {header} timestamp is too old (more than {tolerance}s ago)"
		)
	if timestamp > current + tolerance:
		raise SignatureError(
			SignatureError.STALE_TIMESTAMP,
			f"The {header} timestamp is too far in the future (over {tolerance}s)",
		)
	return timestamp


def whsec_key(secret: str) -> bytes:
	"""The HMAC key of a Standard Webhooks secret (``whsec_`` + base64)."""
	encoded = secret.strip().removeprefix(WHSEC_PREFIX)
	try:
		key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
	except (binascii.Error, ValueError):
		raise ConfigurationError(
			"The Standard Webhooks secret is not valid base64 (expected whsec_…)"
		) from None
	if not key:
		raise ConfigurationError("The Standard Webhooks secret is empty")
	return key


def standard_signature(secret: str, msg_id: str, timestamp: int, text: str) -> str:
	"""``v1,<base64>`` over ``{id}.{timestamp}.{body}``, computed by the standardwebhooks library."""
	when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
	return Webhook(whsec_key(secret)).sign(msg_id=msg_id, timestamp=when, data=text)


def sign_standard_webhook(
	secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
	"""The webhook-id / webhook-timestamp / webhook-signature headers for an outbound delivery.

	Several secrets (during a rotation) give one ``v1,<sig>`` per secret, space-separated.
	"""
	try:
		text = body.decode("utf-8")
	except UnicodeDecodeError:
		raise ConfigurationError("A Standard Webhooks payload must be UTF-8 text") from None
	signatures = [standard_signature(secret, msg_id, timestamp, text) for secret in secret_list(secret)]
	return {
		"webhook-id": msg_id,
		"webhook-timestamp": str(timestamp),
		"webhook-signature": " ".join(signatures),
	}


def check_hmac_algorithm(algorithm: str) -> None:
	if algorithm not in HMAC_ALGORITHMS:
		raise ConfigurationError(
			f"Unsupported HMAC algorithm {algorithm!r}; use one of {', '.join(HMAC_ALGORITHMS)}"
		)


def hmac_digest(secret: str, body: bytes, algorithm: str) -> bytes:
	check_hmac_algorithm(algorithm)
	return hmac.new(secret.encode(), body, algorithm).digest()


def hmac_signature(secret: str, body: bytes, algorithm: str, encoding: str) -> str:
	"""The hex or base64 HMAC of ``body``, as a generic signature header carries it."""
	digest = hmac_digest(secret, body, algorithm)
	if encoding == "base64":
		return base64.b64encode(digest).decode("ascii")
	if encoding != "hex":
		raise ConfigurationError(f"Unsupported signature encoding {encoding!r}; use hex or base64")
	return digest.hex()


@dataclass(frozen=True)
class OutboundSigner:
	"""Signs the body of every outbound request so the receiver can check who sent it.

	``standard_webhooks`` sets webhook-id / webhook-timestamp / webhook-signature; while ``previous_secret`` is
	set (a rotation) it signs with both secrets, so a receiver holding either verifies. ``hmac`` sets one
	header, ``prefix`` + the hex or base64 HMAC of the body with ``secret``. Secrets never show in a repr.
	"""

	scheme: OutboundScheme
	secret: str = field(repr=False)
	previous_secret: str = field(default="", repr=False)
	header_name: str = "X-Signature"
	algorithm: str = "sha256"
	encoding: Literal["hex", "base64"] = "hex"
	prefix: str = ""

	def __post_init__(self) -> None:
		secret_list(self.secret)
		if self.scheme == "standard_webhooks":
			for secret in self.secrets:
				whsec_key(secret)
		elif self.scheme == "hmac":
			if not self.header_name.strip():
				raise ConfigurationError("HMAC signing needs the name of the header to carry the signature")
			hmac_signature(self.secret, b"", self.algorithm, self.encoding)
		else:
			raise ConfigurationError(f"Unknown outbound signature scheme {self.scheme!r}")

	@property
	def secrets(self) -> list[str]:
		"""The secrets in use, the current one first."""
		return [secret for secret in (self.secret, self.previous_secret) if secret and secret.strip()]

	def signature_headers(self, body: bytes, msg_id: str, timestamp: int) -> dict[str, str]:
		"""The headers that sign ``body``; ``msg_id`` should stay the same for every retry of one message."""
		if self.scheme == "standard_webhooks":
			return sign_standard_webhook(self.secrets, msg_id, timestamp, body)
		return {
			self.header_name: self.prefix + hmac_signature(self.secret, body, self.algorithm, self.encoding)
		}

	def secret_header_names(self) -> list[str]:
		"""Headers whose values must be masked wherever a request is shown or stored."""
		return ["webhook-signature"] if self.scheme == "standard_webhooks" else [self.header_name]


def decode_base64_signature(value: str) -> bytes | None:
	try:
		return base64.b64decode(value, validate=True)
	except (binascii.Error, ValueError):
		return None


def verify_standard_event(
	secrets: str | Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	tolerance: int = 300,
	now: float | None = None,
) -> VerifiedEvent:
	keys = secret_list(secrets)
	msg_id = require_header(headers, "webhook-id")
	timestamp = check_timestamp(
		require_header(headers, "webhook-timestamp"), "webhook-timestamp", tolerance, now
	)
	offered = []
	for entry in require_header(headers, "webhook-signature").split():
		version, comma, value = entry.partition(",")
		signature = decode_base64_signature(value) if comma else None
		if signature is None:
			continue
		if version == "v1":
			offered.append(signature)
	if not offered:
		raise SignatureError(
			SignatureError.MALFORMED_HEADER, "The webhook-signature header holds no well-formed v1 signature"
		)
	try:
		text = body.decode("utf-8")
	except UnicodeDecodeError:
		raise SignatureError(
			SignatureError.BAD_SIGNATURE, "The payload is not UTF-8, so it cannot match"
		) from None
	for secret in keys:
		expected = base64.b64decode(standard_signature(secret, msg_id, timestamp, text).partition(",")[2])
		if any(hmac.compare_digest(expected, signature) for signature in offered):
			return VerifiedEvent(msg_id, timestamp)
	raise SignatureError(SignatureError.BAD_SIGNATURE, "No webhook-signature matches the payload")


def verify_standard_webhook(
	secrets: Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	tolerance: int = 300,
	now: float | None = None,
) -> str:
	"""Verify a Standard Webhooks delivery; returns its ``webhook-id`` (the event id)."""
	return str(verify_standard_event(secrets, headers, body, tolerance, now).event_id)


def stripe_hmac(secret: str, timestamp: int | str, body: bytes) -> str:
	return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_stripe(secret: str, body: bytes, timestamp: int) -> str:
	"""A ``Stripe-Signature`` header value: ``t=<timestamp>,v1=<hex hmac-sha256 of "t.body">``."""
	(key,) = secret_list(secret)
	return f"t={timestamp},v1={stripe_hmac(key, timestamp, body)}"


def parse_stripe_header(value: str) -> tuple[str, list[str]]:
	timestamp = None
	signatures = []
	for item in value.split(","):
		key, equals, content = item.strip().partition("=")
		if not equals:
			raise SignatureError(SignatureError.MALFORMED_HEADER, "The Stripe-Signature header is malformed")
		if key == "t":
			timestamp = content
		elif key == "v1":
			signatures.append(content)
	if timestamp is None:
		raise SignatureError(SignatureError.MALFORMED_HEADER, "The Stripe-Signature header has no timestamp")
	if not signatures:
		raise SignatureError(
			SignatureError.MALFORMED_HEADER, "The Stripe-Signature header has no v1 signature"
		)
	return timestamp, signatures


def json_event_id(body: bytes) -> str | None:
	try:
		payload = json.loads(body)
	except (ValueError, UnicodeDecodeError, RecursionError):
		return None
	event_id = payload.get("id") if isinstance(payload, dict) else None
	return event_id if isinstance(event_id, str) and event_id else None


def verify_stripe_event(
	secrets: str | Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	tolerance: int = 300,
	now: float | None = None,
) -> VerifiedEvent:
	keys = secret_list(secrets)
	raw_timestamp, offered = parse_stripe_header(require_header(headers, "Stripe-Signature"))
	timestamp = check_timestamp(raw_timestamp, "Stripe-Signature", tolerance, now)
	offered_bytes = [signature.encode("utf-8", errors="replace") for signature in offered]
	for secret in keys:
		expected = stripe_hmac(secret, timestamp, body).encode("ascii")
		if any(hmac.compare_digest(expected, signature) for signature in offered_bytes):
			return VerifiedEvent(json_event_id(body), timestamp)
	raise SignatureError(SignatureError.BAD_SIGNATURE, "No Stripe-Signature v1 signature matches the payload")


def verify_stripe_signature(
	secrets: Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	tolerance: int = 300,
	now: float | None = None,
) -> str | None:
	"""Verify a Stripe-scheme delivery; returns the event ``id`` from the JSON body when there is one."""
	return verify_stripe_event(secrets, headers, body, tolerance, now).event_id


def verify_hmac_header(
	secret: str | Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	header_name: str = "X-Signature",
	algorithm: str = "sha256",
	encoding: Literal["hex", "base64"] = "hex",
	prefix: str = "",
) -> None:
	"""Verify ``header_name`` = [prefix] + hex/base64 HMAC of the raw body (GitHub, Shopify, ...)."""
	keys = secret_list(secret)
	check_hmac_algorithm(algorithm)
	value = require_header(headers, header_name)
	if prefix:
		if not value.startswith(prefix):
			raise SignatureError(
				SignatureError.MALFORMED_HEADER, f"The {header_name} header lacks {prefix!r}"
			)
		value = value[len(prefix) :]
	offered = decode_hmac_value(value.strip(), encoding)
	if offered is None:
		raise SignatureError(
			SignatureError.MALFORMED_HEADER, f"The {header_name} header is not valid {encoding}"
		)
	for key in keys:
		if hmac.compare_digest(hmac_digest(key, body, algorithm), offered):
			return
	raise SignatureError(
		SignatureError.BAD_SIGNATURE, f"The {header_name} signature does not match the payload"
	)


def decode_hmac_value(value: str, encoding: str) -> bytes | None:
	if encoding == "base64":
		return decode_base64_signature(value)
	if encoding != "hex":
		raise ConfigurationError(f"Unsupported signature encoding {encoding!r}; use hex or base64")
	try:
		return bytes.fromhex(value)
	except ValueError:
		return None


def verify_inbound(
	scheme: Scheme,
	secrets: Sequence[str],
	headers: Mapping[str, str],
	body: bytes,
	**options: Any,
) -> VerifiedEvent:
	"""Verify an inbound webhook with the connector's scheme.

	Options: ``tolerance`` and ``now`` (standard_webhooks, stripe); ``header_name``, ``algorithm``,
	``encoding``, ``prefix`` and ``id_header`` (hmac: the header naming the event id, else the JSON
	body's ``id``).
	"""
	if scheme == "standard_webhooks":
		return verify_standard_event(secrets, headers, body, **pick(options, "tolerance", "now"))
	if scheme == "stripe":
		return verify_stripe_event(secrets, headers, body, **pick(options, "tolerance", "now"))
	if scheme == "hmac":
		verify_hmac_header(
			secrets, headers, body, **pick(options, "header_name", "algorithm", "encoding", "prefix")
		)
		id_header = options.get("id_header")
		event_id = find_header(headers, id_header) if id_header else json_event_id(body)
		return VerifiedEvent(event_id or None, None)
	raise ConfigurationError(f"Unknown signature scheme {scheme!r}")


def pick(options: Mapping[str, Any], *names: str) -> dict[str, Any]:
	return {name: options[name] for name in names if options.get(name) is not None}
