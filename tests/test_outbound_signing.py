"""Outbound request signing: a loopback receiver checks what RestClient sends with the standardwebhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from conftest import RecordedRequest, Reply
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import ConfigurationError, RetryableError
from integration_hub.engine.redact import MASK
from integration_hub.engine.rest import RestClient, RestConfig
from integration_hub.engine.signing import OutboundSigner

CURRENT = "whsec_" + base64.b64encode(b"current-signing-key-0123456789ab").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"previous-signing-key-0123456789").decode()
HMAC_SECRET = "hmac-outbound-secret-5d21"


def signed_client(server, connector_key, signer: OutboundSigner, **overrides) -> RestClient:
	config = RestConfig(
		connector_key, server.url("/hooks"), allow_private_network=True, signer=signer, **overrides
	)
	return RestClient(config)


def standard_receiver(secret: str):
	"""A receiver that answers 204 only when the standardwebhooks library accepts the delivery."""

	def receive(request: RecordedRequest) -> Reply:
		try:
			Webhook(secret).verify(request.body, request.headers, json_parse=False)
		except WebhookVerificationError as error:
			return Reply.json({"error": str(error)}, status=401)
		return Reply(204)

	return receive


def test_standard_webhooks_signature_verifies_with_the_library(http_server, connector_key):
	http_server.route("/hooks/invoices", standard_receiver(CURRENT), method="POST")
	client = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT))

	response = client.request(
		"POST", "invoices", json={"number": "SINV-1", "total": 12.5}, idempotency_key="ih-k1"
	)

	assert response.status_code == 204, response.body
	(received,) = http_server.received("/hooks/invoices")
	assert received.header("webhook-id") == "ih-k1"
	assert abs(int(received.header("webhook-timestamp")) - time.time()) < 5


def test_webhook_id_is_the_idempotency_key_on_every_retry(http_server, connector_key):
	http_server.route("/hooks/invoices", standard_receiver(CURRENT), method="POST")
	client = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT))
	for _attempt in range(2):
		client.request("POST", "invoices", json={"n": 1}, idempotency_key="ih-same-row")
	ids = [request.header("webhook-id") for request in http_server.received("/hooks/invoices")]
	assert ids == ["ih-same-row", "ih-same-row"]


def test_a_tampered_body_or_a_wrong_secret_is_refused_by_the_receiver(http_server, connector_key):
	http_server.route("/hooks/strict", standard_receiver(PREVIOUS), method="POST")
	client = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT))
	assert client.request("POST", "strict", json={"n": 1}, idempotency_key="k").status_code == 401


def test_rotation_signs_with_both_secrets_so_either_receiver_verifies(http_server, connector_key):
	http_server.route("/hooks/new", standard_receiver(CURRENT), method="POST")
	http_server.route("/hooks/old", standard_receiver(PREVIOUS), method="POST")
	client = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT, PREVIOUS))
	assert client.request("POST", "new", json={"n": 1}, idempotency_key="k").status_code == 204
	assert client.request("POST", "old", json={"n": 1}, idempotency_key="k").status_code == 204
	assert len(http_server.received("/hooks/new")[0].header("webhook-signature").split()) == 2


def test_requests_without_an_outbox_row_get_a_fresh_message_id(http_server, connector_key):
	http_server.route("/hooks/list", standard_receiver(CURRENT))
	client = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT))
	assert client.request("GET", "list").status_code == 204
	assert client.request("GET", "list").status_code == 204
	first, second = (request.header("webhook-id") for request in http_server.received("/hooks/list"))
	assert first.startswith("msg_") and first != second


@pytest.mark.parametrize(
	("algorithm", "encoding", "prefix"),
	[("sha256", "hex", "sha256="), ("sha512", "base64", ""), ("sha1", "hex", "")],
)
def test_hmac_header_carries_the_hmac_of_the_exact_body(
	http_server, connector_key, algorithm, encoding, prefix
):
	def receive(request: RecordedRequest) -> Reply:
		digest = hmac.new(HMAC_SECRET.encode(), request.body, getattr(hashlib, algorithm)).digest()
		expected = prefix + (digest.hex() if encoding == "hex" else base64.b64encode(digest).decode())
		offered = request.header("X-Acme-Sig") or ""
		return Reply(204 if hmac.compare_digest(expected, offered) else 401)

	http_server.route("/hooks/orders", receive, method="PUT")
	signer = OutboundSigner("hmac", HMAC_SECRET, "", "X-Acme-Sig", algorithm, encoding, prefix)
	client = signed_client(http_server, connector_key, signer)
	assert client.request("PUT", "orders", json={"id": "Ü-7", "qty": 3}).status_code == 204


def test_signing_runs_after_the_connectors_own_auth(http_server, connector_key):
	def receive(request: RecordedRequest) -> Reply:
		ok = request.header("Authorization") == "Bearer api-token-91ab"
		return standard_receiver(CURRENT)(request) if ok else Reply(401)

	http_server.route("/hooks/secure", receive, method="POST")
	client = signed_client(
		http_server,
		connector_key,
		OutboundSigner("standard_webhooks", CURRENT),
		auth=AuthConfig(kind="bearer", token="api-token-91ab"),
	)
	assert client.request("POST", "secure", json={"n": 1}, idempotency_key="k").status_code == 204


def test_preview_shows_the_signature_headers_masked_and_never_the_secret(http_server, connector_key):
	signer = OutboundSigner("hmac", HMAC_SECRET, header_name="X-Acme-Sig")
	client = signed_client(http_server, connector_key, signer)
	preview = client.prepare_preview(
		"POST", "orders", json={"note": f"echo {HMAC_SECRET}"}, idempotency_key="k"
	)
	assert preview["headers"]["X-Acme-Sig"] == MASK
	assert HMAC_SECRET not in repr(preview)

	standard = signed_client(http_server, connector_key, OutboundSigner("standard_webhooks", CURRENT))
	shown = standard.prepare_preview("POST", "orders", json={"n": 1}, idempotency_key="ih-key")["headers"]
	assert shown["webhook-signature"] == MASK
	assert shown["webhook-id"] == "ih-key"
	assert http_server.received() == []


def test_secrets_stay_out_of_reprs_and_transport_errors(connector_key):
	signer = OutboundSigner("hmac", HMAC_SECRET)
	config = RestConfig(connector_key, "http://127.0.0.1:9/x", allow_private_network=True, signer=signer)
	assert HMAC_SECRET not in repr(signer) and HMAC_SECRET not in repr(config)
	with pytest.raises(RetryableError) as caught:
		RestClient(config).request("POST", f"/x?{HMAC_SECRET}", json={"n": 1})
	assert HMAC_SECRET not in str(caught.value)


@pytest.mark.parametrize(
	("scheme", "secret", "options"),
	[
		("standard_webhooks", "", {}),
		("standard_webhooks", "", {"previous_secret": PREVIOUS}),
		("standard_webhooks", "whsec_not*base64", {}),
		("standard_webhooks", CURRENT, {"previous_secret": "plain-text"}),
		("hmac", "   ", {}),
		("hmac", "s", {"algorithm": "md5"}),
		("hmac", "s", {"encoding": "base32"}),
		("hmac", "s", {"header_name": " "}),
		("stripe", "s", {}),
	],
)
def test_a_signer_that_could_not_sign_is_refused_when_built(scheme, secret, options):
	with pytest.raises(ConfigurationError):
		OutboundSigner(scheme, secret, **options)
