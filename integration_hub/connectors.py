"""Builds engine clients from Connector documents and keeps each connector's health on its form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import frappe
from frappe import _
from frappe.utils import get_datetime, now_datetime

from integration_hub.engine.auth import AuthConfig
from integration_hub.engine.errors import ConfigurationError
from integration_hub.engine.policy import (
	CircuitPolicy,
	CircuitState,
	RetryPolicy,
	circuit_allows,
	circuit_record_failure,
	circuit_record_success,
)
from integration_hub.engine.ratelimit import RedisRateLimiter
from integration_hub.engine.redact import redact_body, redact_text
from integration_hub.engine.rest import RestClient, RestConfig
from integration_hub.engine.signing import OutboundSigner
from integration_hub.engine.soap import SoapClient, SoapConfig

AUTH_KINDS = {
	"None": "none",
	"API Key": "api_key",
	"Bearer Token": "bearer",
	"Basic": "basic",
	"OAuth2 Client Credentials": "oauth2_client_credentials",
	"Login Token": "login_token",
	"WS-Security UsernameToken": "none",
}
SECRET_FIELDS = (
	"api_key",
	"bearer_token",
	"password",
	"client_secret",
	"webhook_secret",
	"previous_webhook_secret",
	"outbound_signing_secret",
	"outbound_signing_previous_secret",
)
SIGNING_SCHEMES = {"Standard Webhooks": "standard_webhooks", "HMAC Header": "hmac"}
CIRCUIT_STATES = {"Closed": "closed", "Open": "open", "Half Open": "half_open"}
PAUSED_UNTIL_RESUMED = datetime(9999, 12, 31)
_runtimes: dict[str, ConnectorRuntime] = {}


@dataclass
class ConnectorRuntime:
	"""What a worker needs to talk to one connector, built once per version of its document."""

	name: str
	version: str
	protocol: str
	retry_policy: RetryPolicy
	circuit_policy: CircuitPolicy
	rest_config: RestConfig | None = None
	soap_config: SoapConfig | None = None
	rate_limit: int = 0
	secrets: list[str] = field(default_factory=list, repr=False)

	def rest_client(self) -> RestClient:
		if not self.rest_config:
			raise ConfigurationError(_("Connector {0} is not a REST connector").format(self.name))
		limiter = None
		if self.rate_limit:
			limiter = RedisRateLimiter(
				frappe.cache, self.rate_limit, prefix=f"{frappe.local.site}:integration_hub:rate:"
			)
		return RestClient(self.rest_config, rate_limiter=limiter, token_cache=RedisTokenCache())

	def soap_client(self) -> SoapClient:
		if not self.soap_config:
			raise ConfigurationError(_("Connector {0} is not a SOAP connector").format(self.name))
		return SoapClient(self.soap_config)

	def redact(self, text: str | None) -> str:
		"""A response body fit to store: the connector's secrets and the values of sensitive keys masked."""
		return redact_body(text or "", self.secrets)


class RedisTokenCache:
	"""OAuth2 and login tokens shared by every worker of the site until shortly before they expire."""

	prefix = "integration_hub:oauth_token:"

	def get(self, key: str) -> str | None:
		# expires=True: a miss must not be memoised in frappe.local, or the token set next is never seen
		return frappe.cache.get_value(self.prefix + key, expires=True)

	def set(self, key: str, token: str, ttl: float) -> None:
		frappe.cache.set_value(self.prefix + key, token, expires_in_sec=max(int(ttl), 1))

	def delete(self, key: str) -> None:
		frappe.cache.delete_value(self.prefix + key)


def get_connector(name: str) -> ConnectorRuntime:
	doc = frappe.get_cached_doc("Connector", name)
	if not doc.enabled:
		raise ConfigurationError(_("Connector {0} is disabled").format(name))
	runtime = _runtimes.get(name)
	if runtime is None or runtime.version != str(doc.modified):
		runtime = _runtimes[name] = build_runtime(doc)
	return runtime


def clear_connector_clients(name: str) -> None:
	_runtimes.pop(name, None)


def connector_secrets(doc) -> dict[str, str]:
	return {
		fieldname: doc.get_password(fieldname, raise_exception=False) or "" for fieldname in SECRET_FIELDS
	}


def secret_values(name: str) -> list[str]:
	"""Every secret of a connector, for scrubbing text that must never show them."""
	if not name or not frappe.db.exists("Connector", name):
		return []
	return [value for value in connector_secrets(frappe.get_cached_doc("Connector", name)).values() if value]


def build_runtime(doc) -> ConnectorRuntime:
	secrets = connector_secrets(doc)
	runtime = ConnectorRuntime(
		name=doc.name,
		version=str(doc.modified),
		protocol=doc.protocol,
		retry_policy=RetryPolicy(
			max_attempts=doc.max_attempts or 1,
			base_delay=float(doc.backoff_base_seconds or 0),
			max_delay=float(doc.backoff_max_seconds or 0),
		),
		circuit_policy=CircuitPolicy(
			failure_threshold=doc.circuit_failure_threshold or 0,
			cooldown_seconds=float(doc.circuit_cooldown_seconds or 0),
		),
		rate_limit=doc.rate_limit_per_second or 0,
		secrets=[value for value in secrets.values() if value],
	)
	if doc.protocol == "SOAP":
		runtime.soap_config = SoapConfig(
			connector_key=doc.name,
			wsdl=wsdl_location(doc),
			service_name=doc.soap_service or "",
			port_name=doc.soap_port or "",
			endpoint_override=doc.soap_endpoint_override or "",
			connect_timeout=doc.connect_timeout,
			operation_timeout=doc.read_timeout,
			verify_tls=bool(doc.verify_tls),
			ws_security=doc.auth_type == "WS-Security UsernameToken",
			username=doc.username or "",
			password=secrets["password"],
			allow_private_network=bool(doc.allow_private_network),
		)
	else:
		runtime.rest_config = RestConfig(
			connector_key=doc.name,
			base_url=doc.base_url,
			auth=AuthConfig(
				kind=AUTH_KINDS.get(doc.auth_type or "None", "none"),
				api_key=secrets["api_key"],
				api_key_name=doc.api_key_name or "X-API-Key",
				api_key_in=(doc.api_key_in or "Header").lower(),
				token=secrets["bearer_token"],
				username=doc.username or "",
				password=secrets["password"],
				client_id=doc.client_id or "",
				client_secret=secrets["client_secret"],
				token_url=doc.token_url or "",
				scope=doc.scope or "",
				audience=doc.audience or "",
				login_url=doc.login_url or "",
				login_token_path=doc.login_token_path or "token",
				login_token_scheme=doc.login_token_scheme or "",
				login_token_header=doc.login_token_header or "",
				login_username_field=doc.login_username_field or "username",
				login_password_field=doc.login_password_field or "password",
				login_token_ttl=float(doc.login_token_ttl or 3600),
			),
			connect_timeout=doc.connect_timeout,
			read_timeout=doc.read_timeout,
			verify_tls=bool(doc.verify_tls),
			default_headers={row.header_name: row.header_value for row in doc.headers},
			allow_private_network=bool(doc.allow_private_network),
			signer=outbound_signer(doc, secrets),
		)
	return runtime


def outbound_signer(doc, secrets: dict[str, str]) -> OutboundSigner | None:
	"""The signer of the connector's outbound requests, or None when it signs nothing.

	Raises ConfigurationError when the secret cannot sign (blank, or not a whsec_ key for Standard Webhooks).
	"""
	scheme = SIGNING_SCHEMES.get(doc.outbound_signing_scheme or "None")
	if scheme is None:
		return None
	return OutboundSigner(
		scheme=scheme,
		secret=secrets["outbound_signing_secret"],
		previous_secret=secrets["outbound_signing_previous_secret"] if scheme == "standard_webhooks" else "",
		header_name=(doc.outbound_signing_header or "X-Signature").strip(),
		algorithm=doc.outbound_signing_algorithm or "sha256",
		encoding=doc.outbound_signing_encoding or "hex",
		prefix=doc.outbound_signing_prefix or "",
	)


def wsdl_location(doc) -> str:
	if doc.wsdl_source == "URL":
		return doc.wsdl_url
	file_name = frappe.db.get_value("File", {"file_url": doc.wsdl_file}, "name")
	if not file_name:
		raise ConfigurationError(
			_("The WSDL file {0} attached to {1} is missing").format(doc.wsdl_file, doc.name)
		)
	return frappe.get_doc("File", file_name).get_full_path()


def paused_until(name: str) -> datetime | None:
	"""When the connector's circuit breaker holds deliveries back, until when; else None."""
	until = frappe.db.get_value("Connector", name, "paused_until")
	return get_datetime(until) if until and get_datetime(until) > now_datetime() else None


def record_circuit_outcome(name: str, success: bool, error: str | None = None) -> None:
	"""Move the connector's circuit breaker and health on the form; writes only when something changes."""
	row = frappe.db.get_value(
		"Connector",
		name,
		[
			"circuit_state",
			"consecutive_failures",
			"paused_until",
			"circuit_failure_threshold",
			"circuit_cooldown_seconds",
			"health_status",
		],
		as_dict=True,
	)
	if not row or is_paused_by_hand(row):
		return
	state = CircuitState(
		state=CIRCUIT_STATES.get(row.circuit_state or "Closed", "closed"),
		consecutive_failures=row.consecutive_failures or 0,
		open_until=to_epoch(row.paused_until),
	)
	now = now_datetime().timestamp()
	if success:
		new_state = circuit_record_success(state)
	else:
		policy = CircuitPolicy(
			failure_threshold=row.circuit_failure_threshold or 0,
			cooldown_seconds=float(row.circuit_cooldown_seconds or 0),
		)
		_allowed, probing_state = circuit_allows(state, now, policy)
		new_state = circuit_record_failure(probing_state, policy, now)
	values = {
		"circuit_state": {v: k for k, v in CIRCUIT_STATES.items()}[new_state.state],
		"consecutive_failures": new_state.consecutive_failures,
		"paused_until": from_epoch(new_state.open_until) if new_state.state == "open" else None,
		"health_status": health_for(new_state),
	}
	if success:
		if new_state == state and row.health_status == "Healthy":
			return
		values["last_success_at"] = now_datetime()
	else:
		values["last_failure_at"] = now_datetime()
		values["last_error"] = (error or "")[:1000]
	frappe.db.set_value("Connector", name, values, update_modified=False)
	frappe.db.commit()
	if values["health_status"] != row.health_status:
		announce_health_change(name, row.health_status, values["health_status"])


def announce_health_change(name: str, previous: str, current: str) -> None:
	"""Call every ``integration_hub_health_changed`` hook (the app's alerts, and any other app's)."""
	for method in frappe.get_hooks("integration_hub_health_changed"):
		frappe.get_attr(method)(name, previous, current)


def health_for(state: CircuitState) -> str:
	"""Healthy, Degraded (failures, still sending) or Failing (the breaker holds deliveries back).

	Paused is only ever set by hand (``pause``), never by an outcome."""
	if state.state != "closed":
		return "Failing"
	return "Healthy" if not state.consecutive_failures else "Degraded"


def is_paused_by_hand(row) -> bool:
	"""Whether an administrator paused the connector: outcomes (a Test Connection) do not lift that."""
	return (
		row.health_status == "Paused"
		and bool(row.paused_until)
		and get_datetime(row.paused_until) > now_datetime()
	)


def pause(name: str) -> None:
	"""Hold every delivery and pull of the connector until ``resume``."""
	frappe.db.set_value(
		"Connector",
		name,
		{"circuit_state": "Open", "paused_until": PAUSED_UNTIL_RESUMED, "health_status": "Paused"},
		update_modified=False,
	)


def resume(name: str) -> None:
	"""Lift a pause (by hand or by the circuit breaker); the next outcome decides the health again."""
	frappe.db.set_value(
		"Connector",
		name,
		{
			"circuit_state": "Closed",
			"paused_until": None,
			"consecutive_failures": 0,
			"health_status": "Unknown",
		},
		update_modified=False,
	)


def to_epoch(value) -> float | None:
	return get_datetime(value).timestamp() if value else None


def from_epoch(value: float | None) -> datetime | None:
	return datetime.fromtimestamp(value) if value else None


WAITING_STATUSES = ("Queued", "Running", "Failed")
HEALTH_COLORS = {
	"Healthy": "green",
	"Degraded": "orange",
	"Paused": "blue",
	"Failing": "red",
	"Disabled": "gray",
	"Unknown": "gray",
}


def health_summary(name: str) -> dict:
	"""What the Connector form shows about one connector: an indicator with its reason, the last success and
	failure, the circuit, and how many Sync Log rows wait for it (counted on the (connector, status) index)."""
	doc = frappe.get_doc("Connector", name)
	counts = dict(
		frappe.db.sql(
			"""select status, count(*) from `tabSync Log`
			where connector = %(connector)s and status in %(statuses)s group by status""",
			{"connector": name, "statuses": (*WAITING_STATUSES, "Dead")},
		)
	)
	indicator, reason = health_reason(doc)
	return {
		"indicator": indicator,
		"color": HEALTH_COLORS[indicator],
		"reason": redact_text(reason, secret_values(name)),
		"circuit_state": doc.circuit_state or "Closed",
		"paused_until": None if is_paused_by_hand(doc) else doc.paused_until,
		"consecutive_failures": doc.consecutive_failures or 0,
		"last_success_at": doc.last_success_at,
		"last_failure_at": doc.last_failure_at,
		"waiting": sum(counts.get(status, 0) for status in WAITING_STATUSES),
		"dead": counts.get("Dead", 0),
		"webhook_url": doc.webhook_url,
	}


def health_reason(doc) -> tuple[str, str]:
	if not doc.enabled:
		return "Disabled", _("The connector is disabled: nothing is sent to it or pulled from it.")
	if is_paused_by_hand(doc):
		return "Paused", _("Paused by an administrator: nothing is sent or pulled until Resume.")
	last_error = doc.last_error or _("no reason recorded")
	if doc.circuit_state in ("Open", "Half Open"):
		return "Failing", _(
			"{0} calls in a row failed, so deliveries wait until {1}. Last error: {2}"
		).format(doc.consecutive_failures or 0, frappe.utils.format_datetime(doc.paused_until), last_error)
	if doc.consecutive_failures:
		return "Degraded", _(
			"The last {0} calls failed; deliveries go on with retries. Last error: {1}"
		).format(doc.consecutive_failures, last_error)
	if doc.last_success_at:
		return "Healthy", _("The last call succeeded at {0}.").format(
			frappe.utils.format_datetime(doc.last_success_at)
		)
	return "Unknown", _("Nothing has been sent yet: use Test Connection to check the connector.")
