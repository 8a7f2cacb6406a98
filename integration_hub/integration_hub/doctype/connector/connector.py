# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import ipaddress
import zoneinfo
from urllib.parse import quote, urlsplit

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import get_url

from integration_hub.connectors import clear_connector_clients, connector_secrets, outbound_signer
from integration_hub.engine.errors import ConfigurationError


class Connector(Document):
	def validate(self):
		self.validate_base_url()
		self.validate_wsdl()
		self.validate_auth()
		self.validate_limits()
		self.validate_headers()
		self.validate_time_zone()
		self.validate_outbound_signing()

	def on_update(self):
		clear_connector_clients(self.name)

	def on_trash(self):
		clear_connector_clients(self.name)

	@property
	def webhook_url(self) -> str:
		if not self.name or self.signature_scheme in (None, "", "None"):
			return ""
		return get_url(f"/api/method/integration_hub.api.webhook.receive?connector={quote(self.name)}")

	def validate_base_url(self):
		if self.protocol == "REST":
			validate_http_url(self.base_url, _("Base URL"))

	def validate_wsdl(self):
		if self.protocol != "SOAP":
			return
		if self.wsdl_source == "URL":
			validate_http_url(self.wsdl_url, _("WSDL URL"))
		elif not self.wsdl_file:
			frappe.throw(_("A SOAP connector needs a WSDL: attach the WSDL file or give its URL."))
		if self.soap_endpoint_override:
			validate_http_url(self.soap_endpoint_override, _("SOAP Endpoint Override"))

	def validate_auth(self):
		required = {
			"API Key": ("api_key_name", "api_key"),
			"Bearer Token": ("bearer_token",),
			"Basic": ("username", "password"),
			"OAuth2 Client Credentials": ("token_url", "client_id", "client_secret"),
			"WS-Security UsernameToken": ("username", "password"),
			"Login Token": ("login_url", "username", "password", "login_token_path"),
		}.get(self.auth_type, ())
		missing = [self.meta.get_label(fieldname) for fieldname in required if not self.get(fieldname)]
		if missing:
			frappe.throw(
				_("Authentication {0} needs: {1}").format(_(self.auth_type), ", ".join(_(m) for m in missing))
			)
		if self.auth_type == "WS-Security UsernameToken" and self.protocol != "SOAP":
			frappe.throw(_("WS-Security UsernameToken is only for SOAP connectors."))
		if self.auth_type == "OAuth2 Client Credentials":
			validate_http_url(self.token_url, _("Token URL"))
		if self.auth_type == "Login Token" and self.protocol != "REST":
			frappe.throw(_("Login Token authentication is only for REST connectors."))

	def validate_time_zone(self):
		if self.time_zone and self.time_zone not in available_time_zones():
			frappe.throw(
				_("{0} is not a time zone name such as Asia/Kolkata or Europe/Berlin.").format(
					frappe.bold(self.time_zone)
				)
			)

	def validate_limits(self):
		if (self.connect_timeout or 0) <= 0 or (self.read_timeout or 0) <= 0:
			frappe.throw(
				_("Connect and read timeouts must be greater than zero: every call needs a timeout.")
			)
		if (self.max_attempts or 0) < 1:
			frappe.throw(_("Max Attempts must be at least 1."))
		if (self.backoff_max_seconds or 0) < (self.backoff_base_seconds or 0):
			frappe.throw(_("Backoff Max must not be smaller than Backoff Base."))

	def validate_headers(self):
		seen = set()
		for row in self.headers:
			name = (row.header_name or "").strip()
			if not is_header_name(name):
				frappe.throw(
					_("Row {0}: {1} is not a valid HTTP header name.").format(row.idx, frappe.bold(name))
				)
			if "\n" in (row.header_value or "") or "\r" in (row.header_value or ""):
				frappe.throw(_("Row {0}: a header value may not contain line breaks.").format(row.idx))
			if name.lower() in seen:
				frappe.throw(_("Row {0}: header {1} is listed twice.").format(row.idx, frappe.bold(name)))
			seen.add(name.lower())

	def validate_outbound_signing(self):
		if (self.outbound_signing_scheme or "None") == "None":
			return
		secrets = connector_secrets(self)
		if not secrets["outbound_signing_secret"].strip():
			frappe.throw(
				_("Outbound signing with {0} needs a Signing Secret.").format(_(self.outbound_signing_scheme))
			)
		header = (self.outbound_signing_header or "").strip()
		if self.outbound_signing_scheme == "HMAC Header" and not is_header_name(header):
			frappe.throw(_("Signing Header {0} is not a valid HTTP header name.").format(frappe.bold(header)))
		try:
			outbound_signer(self, secrets)
		except ConfigurationError as error:
			frappe.throw(_("Outbound signing cannot be set up: {0}").format(error.message))


def is_header_name(name: str) -> bool:
	return bool(name) and not any(ch in name for ch in " :\r\n")


def available_time_zones() -> set[str]:
	return zoneinfo.available_timezones()


def validate_http_url(url: str | None, label: str) -> None:
	"""Reject what can never be a valid remote address; reachability is checked when a call is made."""
	if not url:
		frappe.throw(_("{0} is required.").format(label))
	if "\\" in url:
		frappe.throw(
			_(
				"{0} must not contain a backslash: libraries disagree on which host such an address names."
			).format(label)
		)
	parts = urlsplit(url.strip())
	if parts.scheme not in ("http", "https") or not parts.hostname:
		frappe.throw(
			_(
				"{0} {1} is not a valid address: it must start with http:// or https:// and name a host."
			).format(label, frappe.bold(url))
		)
	if "@" in parts.netloc:
		frappe.throw(
			_(
				"{0} must not carry credentials; use the Authentication section, which keeps them encrypted."
			).format(label)
		)
	try:
		address = ipaddress.ip_address(parts.hostname)
	except ValueError:
		return
	if address.is_link_local or address.is_unspecified or address.is_multicast:
		frappe.throw(_("{0} points at {1}, an address that may never be called.").format(label, address))
