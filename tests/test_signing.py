"""Webhook signatures: cross-checked with the standardwebhooks library, Stripe known answers, properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration_hub.engine.errors import ConfigurationError, SignatureError
from integration_hub.engine.signing import (
	VerifiedEvent,
	sign_standard_webhook,
	sign_stripe,
	verify_hmac_header,
	verify_inbound,
	verify_standard_webhook,
	verify_stripe_signature,
)

NEW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-previous-key-before-rotation").decode()
BODY = json.dumps({"id": "evt_42", "type": "invoice.paid", "amount": "118.00"}).encode()
NOW = 1_700_000_000

STRIPE_SECRET = "whsec_test_secret_for_known_answer"
STRIPE_T = 1700000000
STRIPE_BODY = b'{"id":"evt_1NkZ","type":"payment_intent.succeeded"}'
STRIPE_HEX = "d3930637ed9ec77c8393b384b15b35d2da626ba188a4c439ae30366061879930"

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def codes_of(call) -> str:
	with pytest.raises(SignatureError) as caught:
		call()
	return caught.value.code


# Standard Webhooks


def test_published_standard_webhooks_vector():
	headers = sign_standard_webhook(
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"msg_p5jXN8AQM9LWM0D4loKWxJek",
		1614265330,
		b'{"test": 2432232314}',
	)
	assert headers == {
		"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	}


def test_our_signature_verifies_with_the_library():
	now = int(time.time())
	headers = sign_standard_webhook(NEW_SECRET, "msg_1", now, BODY)
	assert Webhook(NEW_SECRET).verify(BODY, headers) == json.loads(BODY)


def test_library_signature_verifies_with_us():
	now = int(time.time())
	from datetime import datetime, timezone

	signature = Webhook(NEW_SECRET).sign("msg_2", datetime.fromtimestamp(now, tz=timezone.utc), BODY.decode())
	headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(now), "Webhook-Signature": signature}
	assert verify_standard_webhook([NEW_SECRET], headers, BODY) == "msg_2"


def test_rotation_two_secrets_each_verify():
	now = int(time.time())
	headers = sign_standard_webhook([NEW_SECRET, OLD_SECRET], "msg_3", now, BODY)
	assert len(headers["webhook-signature"].split(" ")) == 2
	for secret in (NEW_SECRET, OLD_SECRET):
		Webhook(secret).verify(BODY, headers)
		assert verify_standard_webhook([secret], headers, BODY, now=now) == "msg_3"


def test_rotation_old_key_signature_verifies_while_both_are_configured():
	headers = sign_standard_webhook(OLD_SECRET, "msg_4", NOW, BODY)
	assert verify_standard_webhook([NEW_SECRET, OLD_SECRET], headers, BODY, now=NOW) == "msg_4"
	assert codes_of(lambda: verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW)) == "bad_signature"


def test_unknown_versions_are_skipped_when_a_v1_matches():
	headers = sign_standard_webhook(NEW_SECRET, "msg_5", NOW, BODY)
	headers["webhook-signature"] = "v1a,c29tZXRoaW5n v2,abc " + headers["webhook-signature"]
	assert verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW) == "msg_5"


@pytest.mark.parametrize(
	("mutate", "code"),
	[
		(lambda h: h.pop("webhook-id"), SignatureError.MISSING_HEADER),
		(lambda h: h.pop("webhook-signature"), SignatureError.MISSING_HEADER),
		(lambda h: h.update({"webhook-timestamp": " "}), SignatureError.MISSING_HEADER),
		(lambda h: h.update({"webhook-timestamp": "12.5"}), SignatureError.MALFORMED_HEADER),
		(lambda h: h.update({"webhook-signature": "v1"}), SignatureError.MALFORMED_HEADER),
		(lambda h: h.update({"webhook-signature": "v1,***not base64***"}), SignatureError.MALFORMED_HEADER),
		(lambda h: h.update({"webhook-timestamp": str(NOW - 301)}), SignatureError.STALE_TIMESTAMP),
		(lambda h: h.update({"webhook-timestamp": str(NOW + 301)}), SignatureError.STALE_TIMESTAMP),
		(lambda h: h.update({"webhook-id": "msg_other"}), SignatureError.BAD_SIGNATURE),
	],
)
def test_standard_failures_have_distinct_codes(mutate, code):
	headers = sign_standard_webhook(NEW_SECRET, "msg_6", NOW, BODY)
	mutate(headers)
	assert codes_of(lambda: verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW)) == code


def test_stale_messages_say_which_way():
	for offset, word in ((-400, "too old"), (400, "future")):
		headers = sign_standard_webhook(NEW_SECRET, "m", NOW + offset, BODY)
		with pytest.raises(SignatureError, match=word):
			verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW)


def test_non_utf8_body_is_a_signature_error():
	headers = sign_standard_webhook(NEW_SECRET, "m", NOW, BODY)
	assert (
		codes_of(lambda: verify_standard_webhook([NEW_SECRET], headers, b"\xff\xfe", now=NOW))
		== "bad_signature"
	)


def test_bad_secret_configuration():
	headers = sign_standard_webhook(NEW_SECRET, "m", NOW, BODY)
	with pytest.raises(ConfigurationError):
		verify_standard_webhook([], headers, BODY, now=NOW)
	with pytest.raises(ConfigurationError):
		verify_standard_webhook(["whsec_!!!"], headers, BODY, now=NOW)


def flip(data: bytes, index: int, value: int) -> bytes:
	changed = bytearray(data)
	changed[index % len(changed)] ^= value
	return bytes(changed)


@FUZZ
@given(
	body=st.binary(min_size=1, max_size=200).filter(
		lambda b: b.decode("utf-8", "ignore") == b.decode("utf-8", "replace")
	),
	index=st.integers(min_value=0),
	xor=st.integers(min_value=1, max_value=255),
)
def test_property_any_changed_body_byte_fails(body, index, xor):
	headers = sign_standard_webhook(NEW_SECRET, "msg_p", NOW, body)
	changed = flip(body, index, xor)
	assert (
		codes_of(lambda: verify_standard_webhook([NEW_SECRET], headers, changed, now=NOW)) == "bad_signature"
	)
	assert verify_standard_webhook([NEW_SECRET], headers, body, now=NOW) == "msg_p"


@FUZZ
@given(
	msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,30}", fullmatch=True),
	index=st.integers(min_value=0),
	xor=st.integers(1, 127),
)
def test_property_any_changed_id_byte_fails(msg_id, index, xor):
	headers = sign_standard_webhook(NEW_SECRET, msg_id, NOW, BODY)
	changed = flip(msg_id.encode(), index, xor).decode("ascii")
	headers["webhook-id"] = changed
	assume(changed.strip())
	with pytest.raises(SignatureError):
		verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW)


@FUZZ
@given(index=st.integers(min_value=0, max_value=9), xor=st.integers(1, 127))
def test_property_any_changed_timestamp_byte_fails(index, xor):
	headers = sign_standard_webhook(NEW_SECRET, "msg_t", NOW, BODY)
	headers["webhook-timestamp"] = flip(str(NOW).encode(), index, xor).decode("ascii")
	with pytest.raises(SignatureError) as caught:
		verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW, tolerance=10**9)
	assert caught.value.code in {"bad_signature", "malformed_header", "missing_header", "stale_timestamp"}


@FUZZ
@given(offset=st.one_of(st.integers(-(10**9), -301), st.integers(301, 10**9)))
def test_property_outside_window_is_stale(offset):
	headers = sign_standard_webhook(NEW_SECRET, "msg_w", NOW + offset, BODY)
	assert (
		codes_of(lambda: verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW)) == "stale_timestamp"
	)
	assert (
		codes_of(
			lambda: verify_stripe_signature(
				[STRIPE_SECRET],
				{"Stripe-Signature": sign_stripe(STRIPE_SECRET, BODY, NOW + offset)},
				BODY,
				now=NOW,
			)
		)
		== "stale_timestamp"
	)


@FUZZ
@given(offset=st.integers(-300, 300))
def test_property_inside_window_verifies(offset):
	headers = sign_standard_webhook(NEW_SECRET, "msg_in", NOW + offset, BODY)
	assert verify_standard_webhook([NEW_SECRET], headers, BODY, now=NOW) == "msg_in"


header_values = st.one_of(
	st.text(max_size=80),
	st.from_regex(r"(v1,[A-Za-z0-9+/=]{0,50} ?){0,3}", fullmatch=True),
	st.from_regex(r"(t=-?[0-9]{0,12},?)?(v[01]=[0-9a-f]{0,64},?){0,3}", fullmatch=True),
	st.just(""),
)
fuzz_headers = st.dictionaries(
	st.sampled_from(
		["webhook-id", "Webhook-Timestamp", "webhook-signature", "Stripe-Signature", "X-Signature", "x-other"]
	),
	header_values,
	max_size=6,
)


@FUZZ
@given(
	headers=fuzz_headers,
	body=st.binary(max_size=64),
	scheme=st.sampled_from(["standard_webhooks", "stripe", "hmac"]),
)
def test_property_malformed_input_only_raises_signature_error(headers, body, scheme):
	secrets = {"standard_webhooks": [NEW_SECRET], "stripe": [STRIPE_SECRET], "hmac": ["hmac-secret"]}[scheme]
	try:
		verify_inbound(scheme, secrets, headers, body, now=NOW)
	except SignatureError as exc:
		assert exc.code in {"missing_header", "malformed_header", "stale_timestamp", "bad_signature"}
	else:
		pytest.fail("random headers must not verify")


# Stripe


def test_stripe_known_answer():
	expected = hmac.new(
		STRIPE_SECRET.encode(), f"{STRIPE_T}.".encode() + STRIPE_BODY, hashlib.sha256
	).hexdigest()
	assert expected == STRIPE_HEX
	assert sign_stripe(STRIPE_SECRET, STRIPE_BODY, STRIPE_T) == f"t={STRIPE_T},v1={STRIPE_HEX}"
	header = {"stripe-signature": f"t={STRIPE_T},v1={'0' * 64},v1={STRIPE_HEX},v0=ignored"}
	assert verify_stripe_signature([STRIPE_SECRET], header, STRIPE_BODY, now=STRIPE_T + 5) == "evt_1NkZ"


def test_stripe_rotation_and_event_id_fallback():
	header = {"Stripe-Signature": sign_stripe("whsec_old", b"not json", NOW)}
	assert verify_stripe_signature(["whsec_new", "whsec_old"], header, b"not json", now=NOW) is None


@pytest.mark.parametrize(
	("header", "code"),
	[
		(None, "missing_header"),
		("t=1700000000", "malformed_header"),
		(f"v1={STRIPE_HEX}", "malformed_header"),
		(f"t=abc,v1={STRIPE_HEX}", "malformed_header"),
		(f"t={STRIPE_T}v1={STRIPE_HEX}", "malformed_header"),
		(f"t={STRIPE_T},,v1={STRIPE_HEX}", "malformed_header"),
		(f"t={STRIPE_T - 1000},v1={STRIPE_HEX}", "stale_timestamp"),
		(f"t={STRIPE_T},v1={STRIPE_HEX[:-1]}f", "bad_signature"),
		(f"t={STRIPE_T},v1=é{STRIPE_HEX[1:]}", "bad_signature"),
	],
)
def test_stripe_failures(header, code):
	headers = {"Stripe-Signature": header} if header is not None else {}
	assert (
		codes_of(lambda: verify_stripe_signature([STRIPE_SECRET], headers, STRIPE_BODY, now=STRIPE_T)) == code
	)


# Generic HMAC


def test_hmac_github_style_hex_with_prefix():
	digest = hmac.new(b"gh-secret", BODY, hashlib.sha256).hexdigest()
	headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": "d-1"}
	verify_hmac_header("gh-secret", headers, BODY, header_name="X-Hub-Signature-256", prefix="sha256=")
	event = verify_inbound(
		"hmac",
		["old", "gh-secret"],
		headers,
		BODY,
		header_name="x-hub-signature-256",
		prefix="sha256=",
		id_header="X-GitHub-Delivery",
	)
	assert event == VerifiedEvent("d-1", None)


def test_hmac_shopify_style_base64():
	digest = base64.b64encode(hmac.new(b"shop-secret", BODY, hashlib.sha256).digest()).decode()
	headers = {"X-Shopify-Hmac-Sha256": digest}
	event = verify_inbound(
		"hmac", ["shop-secret"], headers, BODY, header_name="X-Shopify-Hmac-Sha256", encoding="base64"
	)
	assert event == VerifiedEvent("evt_42", None)


@pytest.mark.parametrize(
	("headers", "options", "code"),
	[
		({}, {}, "missing_header"),
		({"X-Signature": "zz"}, {}, "malformed_header"),
		({"X-Signature": "sha1=00"}, {"prefix": "sha256="}, "malformed_header"),
		({"X-Signature": "00" * 32}, {}, "bad_signature"),
		({"X-Signature": "!!"}, {"encoding": "base64"}, "malformed_header"),
	],
)
def test_hmac_failures(headers, options, code):
	assert codes_of(lambda: verify_hmac_header("s", headers, BODY, **options)) == code


def test_hmac_unsupported_algorithm_is_configuration():
	with pytest.raises(ConfigurationError):
		verify_hmac_header("s", {"X-Signature": "00"}, BODY, algorithm="md5")


def test_dispatcher_standard_and_stripe():
	standard = sign_standard_webhook(NEW_SECRET, "msg_d", NOW, BODY)
	assert verify_inbound("standard_webhooks", [NEW_SECRET], standard, BODY, now=NOW) == VerifiedEvent(
		"msg_d", NOW
	)
	stripe = {"Stripe-Signature": sign_stripe(STRIPE_SECRET, BODY, NOW)}
	assert verify_inbound("stripe", [STRIPE_SECRET], stripe, BODY, now=NOW, tolerance=60) == VerifiedEvent(
		"evt_42", NOW
	)
	with pytest.raises(ConfigurationError):
		verify_inbound("svix-ish", [NEW_SECRET], standard, BODY)


def test_library_refuses_a_tampered_delivery_we_signed():
	headers = sign_standard_webhook(NEW_SECRET, "msg_lib", int(time.time()), BODY)
	with pytest.raises(WebhookVerificationError):
		Webhook(NEW_SECRET).verify(BODY + b" ", headers)
