"""Secrets never survive redaction: headers, text (incl. encoded forms), nested payloads, WS-Security XML."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from integration_hub.engine.redact import (
	MASK,
	SENSITIVE_HEADERS,
	redact_headers,
	redact_mapping,
	redact_text,
	redact_wsse,
)

SECRET = "s3cr3t/pa ss+word"


@pytest.mark.parametrize("name", sorted(SENSITIVE_HEADERS))
def test_every_listed_header_is_masked_in_any_case(name):
	redacted = redact_headers({name.upper(): "value-123", "Content-Type": "application/json"})
	assert redacted == {name.upper(): MASK, "Content-Type": "application/json"}


@pytest.mark.parametrize(
	"name", ["X-Shop-Access-Token", "X-Custom-Secret", "X-Vendor-Signature", "X-Auth-User"]
)
def test_credential_like_header_names_are_masked(name):
	assert redact_headers({name: "abc"})[name] == MASK


def test_extra_header_names_and_plain_headers():
	headers = {"X-Tenant-Key": "t-1", "Accept": "application/json", "Idempotency-Key": "abc"}
	redacted = redact_headers(headers, extra_names=["x-tenant-key"])
	assert redacted == {"X-Tenant-Key": MASK, "Accept": "application/json", "Idempotency-Key": "abc"}
	assert redact_headers(None) == {}


def test_text_masks_secret_and_its_encodings():
	encoded = base64.b64encode(SECRET.encode()).decode()
	text = (
		f"raw={SECRET} b64={encoded} url={quote(SECRET, safe='')} json={json.dumps({'k': SECRET})} "
		f"hdr=Basic {base64.b64encode(f'user:{SECRET}'.encode()).decode()} bearer=Bearer abc.def-ghi"
	)
	redacted = redact_text(text, [SECRET, ""])
	for form in (SECRET, encoded, quote(SECRET, safe=""), "abc.def-ghi", "dXNlcj"):
		assert form not in redacted
	assert redacted.count(MASK) >= 6
	assert "raw=" in redacted and "Basic ********" in redacted


def test_text_without_secrets_is_unchanged():
	assert redact_text("nothing to hide here", []) == "nothing to hide here"
	assert redact_text("", [SECRET]) == ""


@settings(max_examples=150, deadline=None)
@given(
	secret=st.text(min_size=1, max_size=20),
	before=st.text(max_size=30),
	after=st.text(max_size=30),
)
def test_property_secret_never_survives(secret, before, after):
	assume(secret not in MASK)
	assert secret not in redact_text(before + secret + after, [secret])


def test_mapping_masks_sensitive_keys_and_secret_values_recursively():
	payload = {
		"customer": "ACME",
		"password": "hunter2",
		"nested": {"api_key": "k-1", "Client-Secret": "cs", "note": f"contains {SECRET} inside"},
		"items": [{"access_token": "t"}, {"qty": 2, "rate": 1.5, "ok": True, "none": None}],
		"Authorization": "Bearer x",
		"headers": {"X-Signature": "abc"},
	}
	redacted = redact_mapping(payload, [SECRET])
	assert redacted["customer"] == "ACME"
	assert redacted["password"] == MASK
	assert redacted["nested"]["api_key"] == MASK
	assert redacted["nested"]["Client-Secret"] == MASK
	assert redacted["nested"]["note"] == f"contains {MASK} inside"
	assert redacted["items"] == [{"access_token": MASK}, {"qty": 2, "rate": 1.5, "ok": True, "none": None}]
	assert redacted["Authorization"] == MASK
	assert redacted["headers"]["X-Signature"] == MASK
	assert payload["password"] == "hunter2", "the input is not modified"


def test_wsse_password_and_nonce_are_masked():
	xml = (
		'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Header>'
		'<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
		"<wsse:UsernameToken><wsse:Username>erp</wsse:Username>"
		'<wsse:Password Type="PasswordText">hunter2</wsse:Password>'
		"<wsse:Nonce>bm9uY2U=</wsse:Nonce></wsse:UsernameToken></wsse:Security>"
		"</soap-env:Header><soap-env:Body><Password>also-masked</Password></soap-env:Body></soap-env:Envelope>"
	)
	redacted = redact_wsse(xml)
	assert "hunter2" not in redacted and "bm9uY2U=" not in redacted and "also-masked" not in redacted
	assert "<wsse:Username>erp</wsse:Username>" in redacted
	assert f'<wsse:Password Type="PasswordText">{MASK}</wsse:Password>' in redacted
