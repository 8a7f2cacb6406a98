"""Secrets: blank webhook secrets, response bodies masked by key, reprs, preview errors (issue #11)."""

from __future__ import annotations

import json

import pytest

from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import ConfigurationError
from integration_hub.engine.redact import MASK, redact_body
from integration_hub.engine.rest import RestClient, RestConfig, RestResponse
from integration_hub.engine.signing import sign_standard_webhook, sign_stripe, verify_inbound
from integration_hub.engine.soap import SoapConfig

BODY = b'{"id": "evt_1"}'


@pytest.mark.parametrize("secret", [" ", "   ", "\t\n"])
def test_whitespace_only_secret_is_refused(secret):
	with pytest.raises(ConfigurationError):
		sign_stripe(secret, BODY, 1_700_000_000)
	with pytest.raises(ConfigurationError):
		sign_standard_webhook(secret, "msg_1", 1_700_000_000, BODY)
	for scheme in ("stripe", "hmac", "standard_webhooks"):
		with pytest.raises(ConfigurationError):
			verify_inbound(scheme, [secret], {"Stripe-Signature": "t=1,v1=00", "X-Signature": "00"}, BODY)


def test_blank_previous_secret_is_skipped_but_not_alone():
	header = sign_stripe("whsec-live", BODY, 1_700_000_000)
	event = verify_inbound(
		"stripe", ["whsec-live", "  "], {"Stripe-Signature": header}, BODY, now=1_700_000_000
	)
	assert event.event_id == "evt_1"
	with pytest.raises(ConfigurationError):
		verify_inbound("stripe", ["", "  "], {"Stripe-Signature": header}, BODY, now=1_700_000_000)


SENSITIVE_BODY = {
	"access_token": "at-123",
	"refresh_token": "rt-456",
	"client_secret": "cs-789",
	"password": "pw-000",
	"secret": "s-111",
	"api_key": "ak-222",
	"token": "t-333",
	"nested": {"data": [{"token": "t-444", "name": "kept"}]},
	"expires_in": 3600,
}
SENSITIVE_VALUES = ("at-123", "rt-456", "cs-789", "pw-000", "s-111", "ak-222", "t-333", "t-444")


def test_response_body_is_masked_by_key():
	masked = redact_body(json.dumps(SENSITIVE_BODY, indent=2))
	assert not any(value in masked for value in SENSITIVE_VALUES)
	assert json.loads(masked)["access_token"] == MASK
	assert json.loads(masked)["nested"]["data"][0]["name"] == "kept"
	assert json.loads(masked)["expires_in"] == 3600


def test_truncated_body_is_masked_by_key_too():
	text = json.dumps(SENSITIVE_BODY)[:-20] + "…"
	masked = redact_body(text)
	assert not any(value in masked for value in SENSITIVE_VALUES[:-1])
	assert '"name": "kept"' in masked


def test_body_masking_keeps_plain_text_and_masks_known_secrets():
	assert redact_body("upstream said: token expired") == "upstream said: token expired"
	assert redact_body("echo sk-live-9", ["sk-live-9"]) == f"echo {MASK}"
	assert redact_body('{"message": "bad \\"token\\" here"}') == '{"message": "bad \\"token\\" here"}'


def test_no_config_repr_shows_a_secret():
	secrets = ("ak-secret-1", "tok-secret-2", "pw-secret-3", "cs-secret-4", "hdr-secret-5", "wsse-secret-6")
	auth = AuthConfig(
		kind="oauth2_client_credentials",
		api_key=secrets[0],
		token=secrets[1],
		password=secrets[2],
		client_secret=secrets[3],
		client_id="client-id",
	)
	rest = RestConfig("k", "https://api.example.com", auth=auth, default_headers={"X-Api-Key": secrets[4]})
	soap = SoapConfig("k", "service.wsdl", username="user", password=secrets[5], ws_security=True)
	response = RestResponse(200, {}, b"", 1.0, None, secrets=secrets)
	for shown in (repr(auth), repr(rest), repr(soap), repr(response), str(rest)):
		assert not any(secret in shown for secret in secrets), shown
	assert "client-id" in repr(rest) and "api.example.com" in repr(rest)


@pytest.mark.parametrize(
	("base_url", "headers"),
	[
		("http://.bad-label.example", {}),
		("http://exa mple.com", {}),
		("https://api.example.com", {"X-Token": "a\nb"}),
	],
)
def test_preview_turns_request_building_errors_into_configuration_errors(base_url, headers, connector_key):
	client = RestClient(RestConfig(connector_key, base_url, default_headers=headers))
	with pytest.raises(ConfigurationError, match="cannot be built"):
		client.prepare_preview("GET", "/x", json={"a": 1})
