"""Masking of secrets before anything is logged, stored in a Sync Log or shown in the Desk."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "********"

SENSITIVE_HEADERS = frozenset(
	{
		"authorization",
		"proxy-authorization",
		"cookie",
		"set-cookie",
		"x-api-key",
		"api-key",
		"apikey",
		"x-auth-token",
		"x-access-token",
		"x-csrf-token",
		"webhook-signature",
		"stripe-signature",
		"x-hub-signature",
		"x-hub-signature-256",
		"x-signature",
		"x-shopify-hmac-sha256",
		"x-wc-webhook-signature",
	}
)
SENSITIVE_HEADER_PATTERN = re.compile(
	r"auth|token|secret|passw|signature|api-?key|cookie|hmac", re.IGNORECASE
)
SENSITIVE_KEY_PATTERN = re.compile(
	r"passw|passphrase|secret|token|api_?key|authorization|credential|private_?key|signature|cookie|session_?id"
)
SENSITIVE_KEYS = frozenset({"auth", "pwd", "pass", "pin"})
AUTH_SCHEME_PATTERN = re.compile(r"\b(Basic|Bearer|Digest)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
JSON_STRING_PAIR = re.compile(r'"((?:[^"\\]|\\.){1,200})"(\s*:\s*)"(?:[^"\\]|\\.)*"')
WSSE_SECRET_PATTERN = re.compile(
	r"(<(?P<prefix>[\w.-]+:)?(?P<tag>Password|Nonce)\b[^>]*>)(.*?)(</(?P=prefix)?(?P=tag)\s*>)",
	re.DOTALL,
)


def is_sensitive_header(name: str, extra_names: Iterable[str] = ()) -> bool:
	lowered = name.lower()
	if lowered in SENSITIVE_HEADERS or lowered in {extra.lower() for extra in extra_names}:
		return True
	return bool(SENSITIVE_HEADER_PATTERN.search(lowered))


def redact_headers(headers: Mapping[str, str] | None, extra_names: Iterable[str] = ()) -> dict[str, str]:
	"""A copy of ``headers`` with credential and signature values replaced by a mask."""
	extra = tuple(extra_names)
	return {
		str(name): MASK if is_sensitive_header(str(name), extra) else str(value)
		for name, value in (headers or {}).items()
	}


def secret_forms(secret: str) -> set[str]:
	"""The ways a secret shows up in text: as is, base64, URL-encoded, JSON-escaped."""
	raw = secret.encode("utf-8")
	forms = {
		secret,
		base64.b64encode(raw).decode("ascii"),
		base64.b64encode(raw).decode("ascii").rstrip("="),
		base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
		quote(secret, safe=""),
		quote_plus(secret, safe=""),
		json.dumps(secret)[1:-1],
	}
	return {form for form in forms if form}


def redact_text(text: str, secrets: Iterable[str]) -> str:
	"""Replace every occurrence of each non-empty secret (and its encoded forms) with a mask.

	Credentials after ``Basic``/``Bearer``/``Digest`` are masked too, since a basic-auth value is the
	base64 of ``user:password`` and cannot be matched from the password alone.
	"""
	if not text:
		return text
	forms: set[str] = set()
	for secret in secrets:
		if secret:
			forms |= secret_forms(str(secret))
	for form in sorted(forms, key=len, reverse=True):
		text = text.replace(form, MASK)
	return AUTH_SCHEME_PATTERN.sub(lambda match: f"{match.group(1)} {MASK}", text)


def is_sensitive_key(key: object) -> bool:
	if not isinstance(key, str):
		return False
	normalized = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
	return normalized in SENSITIVE_KEYS or bool(SENSITIVE_KEY_PATTERN.search(normalized))


def redact_mapping(obj: Any, secrets: Iterable[str] = ()) -> Any:
	"""A redacted copy of a JSON-like structure: sensitive keys masked, secrets masked inside strings."""
	secret_list = [secret for secret in secrets if secret]
	return redact_value(obj, secret_list)


def redact_value(obj: Any, secrets: list[str]) -> Any:
	if isinstance(obj, Mapping):
		return {
			key: MASK if is_sensitive_key(key) else redact_value(value, secrets) for key, value in obj.items()
		}
	if isinstance(obj, list | tuple):
		return [redact_value(item, secrets) for item in obj]
	if isinstance(obj, str):
		return redact_text(obj, secrets)
	return obj


def redact_body(text: str, secrets: Iterable[str] = ()) -> str:
	"""A response body fit to store: secrets masked, and the string value of every sensitive key
	(``access_token``, ``client_secret``, ``password``, ``api_key``, ...) masked wherever it is nested.

	Works on the text, so a body cut short for a log (no longer valid JSON) is masked too.
	"""

	def mask_pair(match: re.Match) -> str:
		key = match.group(1)
		return f'"{key}"{match.group(2)}"{MASK}"' if is_sensitive_key(key) else match.group(0)

	return JSON_STRING_PAIR.sub(mask_pair, redact_text(text, secrets))


def redact_wsse(xml_text: str) -> str:
	"""Mask the contents of WS-Security ``Password`` and ``Nonce`` elements in an XML string."""
	return WSSE_SECRET_PATTERN.sub(lambda match: f"{match.group(1)}{MASK}{match.group(5)}", xml_text)
