"""SoapClient against a real spyne service on 127.0.0.1: complex types, WS-Security, faults, timeouts,
and hardened WSDL loading (DTD, entity expansion, external entities and imports are refused unread)."""

from __future__ import annotations

import datetime
import decimal
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import requests

spyne = pytest.importorskip("spyne", reason="spyne 2.14 (the SOAP test server) only runs on Python < 3.12")

from spyne import (
	Application,
	Array,
	Boolean,
	ComplexModel,
	Date,
	Decimal,
	Fault,
	Float,
	Integer,
	ServiceBase,
	Unicode,
	rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from werkzeug.serving import make_server

from integration_hub.engine import soap
from integration_hub.engine.errors import (
	BlockedAddressError,
	ConfigurationError,
	MappingError,
	PermanentError,
	RetryableError,
	SoapFaultError,
)
from integration_hub.engine.redact import MASK
from integration_hub.engine.soap import SoapClient, SoapConfig

TNS = "urn:integration-hub:test:billing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WS_USER = "erp-sync"
WS_PASSWORD = "Tr0ub4dor&3-wsse"
SENTINEL = "SENTINEL-7f3a9c-do-not-leak"


class InvoiceLine(ComplexModel):
	__namespace__ = TNS
	item_code = Unicode(min_occurs=1)
	qty = Decimal(min_occurs=1)
	rate = Decimal(min_occurs=1)


class Invoice(ComplexModel):
	__namespace__ = TNS
	number = Unicode(min_occurs=1)
	customer = Unicode
	posting_date = Date
	lines = Array(InvoiceLine)


class Receipt(ComplexModel):
	__namespace__ = TNS
	receipt_id = Unicode
	invoice_number = Unicode
	posting_date = Date
	total = Decimal
	line_count = Integer
	accepted = Boolean


def require_username_token(ctx) -> None:
	"""spyne has no WS-Security: read the UsernameToken from the incoming SOAP header ourselves."""
	for element in ctx.in_header_doc or []:
		token = element.find(f"{{{WSSE}}}UsernameToken") if element.tag == f"{{{WSSE}}}Security" else None
		if token is None:
			continue
		if (
			token.findtext(f"{{{WSSE}}}Username") == WS_USER
			and token.findtext(f"{{{WSSE}}}Password") == WS_PASSWORD
		):
			return
	raise Fault(faultcode="Client.Authentication", faultstring="WS-Security authentication failed")


def make_service(secured: bool) -> type[ServiceBase]:
	class BillingService(ServiceBase):
		@rpc(Invoice, _returns=Receipt)
		def SubmitInvoice(ctx, invoice):
			if secured:
				require_username_token(ctx)
			lines = invoice.lines or []
			return Receipt(
				receipt_id=f"R-{invoice.number}",
				invoice_number=invoice.number,
				posting_date=invoice.posting_date,
				total=sum((line.qty * line.rate for line in lines), decimal.Decimal("0")),
				line_count=len(lines),
				accepted=True,
			)

		@rpc(Unicode, _returns=Unicode)
		def VoidInvoice(ctx, number):
			raise Fault(faultcode="Client.UnknownInvoice", faultstring=f"Invoice {number} does not exist")

		@rpc(Float, _returns=Unicode)
		def SlowEcho(ctx, seconds):
			time.sleep(seconds)
			return "done"

	return BillingService


def soap_app(secured: bool) -> WsgiApplication:
	service = make_service(secured)
	application = Application(
		[service], tns=TNS, name="Billing", in_protocol=Soap11(validator="lxml"), out_protocol=Soap11()
	)
	return WsgiApplication(application)


class SoapServer:
	"""spyne behind a small WSGI router, on a threaded werkzeug server on 127.0.0.1."""

	def __init__(self) -> None:
		self.open_app = soap_app(secured=False)
		self.secure_app = soap_app(secured=True)
		self.paths: list[str] = []
		self.extra: dict[str, bytes] = {}
		self.httpd = make_server("127.0.0.1", 0, self.route, threaded=True)
		self.thread = threading.Thread(
			target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
		)
		self.thread.start()

	@property
	def base_url(self) -> str:
		return f"http://127.0.0.1:{self.httpd.server_address[1]}"

	def route(self, environ, start_response):
		path = environ.get("PATH_INFO", "")
		self.paths.append(path)
		if path in self.extra:
			start_response("200 OK", [("Content-Type", "text/xml")])
			return [self.extra[path]]
		if path.startswith("/broken"):
			start_response("503 Service Unavailable", [("Content-Type", "text/html")])
			return [b"<html><body>down for maintenance</body></html>"]
		app = self.secure_app if path.startswith("/secure") else self.open_app
		return app(environ, start_response)

	def wsdl_text(self, path: str = "/billing") -> str:
		return requests.get(f"{self.base_url}{path}?wsdl", timeout=(2, 10)).text

	def close(self) -> None:
		self.httpd.shutdown()
		self.httpd.server_close()


@pytest.fixture(scope="module")
def soap_server() -> Iterator[SoapServer]:
	for name in ("spyne", "werkzeug"):
		logging.getLogger(name).setLevel(logging.CRITICAL)
	server = SoapServer()
	yield server
	server.close()


def config_for(connector_key: str, wsdl: str, **overrides) -> SoapConfig:
	return SoapConfig(connector_key, wsdl, allow_private_network=True, **overrides)


INVOICE = {
	"invoice": {
		"number": "SINV-0001",
		"customer": "ACME Traders",
		"posting_date": datetime.date(2024, 5, 1),
		"lines": {
			"InvoiceLine": [
				{"item_code": "WIDGET", "qty": decimal.Decimal("3"), "rate": decimal.Decimal("12.50")},
				{"item_code": "GADGET", "qty": decimal.Decimal("1"), "rate": decimal.Decimal("80.25")},
			]
		},
	}
}
RECEIPT = {
	"receipt_id": "R-SINV-0001",
	"invoice_number": "SINV-0001",
	"posting_date": datetime.date(2024, 5, 1),
	"total": decimal.Decimal("117.75"),
	"line_count": 2,
	"accepted": True,
}


def test_call_with_complex_types_returns_plain_python(soap_server, connector_key):
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	result = client.call("SubmitInvoice", INVOICE)
	assert type(result) is dict
	assert result == RECEIPT


def test_wsdl_from_a_local_file(soap_server, connector_key, tmp_path):
	path = tmp_path / "billing.wsdl"
	path.write_text(soap_server.wsdl_text())
	client = SoapClient(config_for(connector_key, str(path)))
	assert client.call("SubmitInvoice", INVOICE)["total"] == decimal.Decimal("117.75")


def test_built_clients_are_cached_per_config(soap_server, connector_key):
	url = f"{soap_server.base_url}/billing?wsdl"
	first = SoapClient(config_for(connector_key, url))
	loads = soap_server.paths.count("/billing")
	assert SoapClient(config_for(connector_key, url)).client is first.client
	assert soap_server.paths.count("/billing") == loads, "the WSDL is not fetched again"
	assert SoapClient(config_for(connector_key, url, operation_timeout=9)).client is not first.client


def test_ws_security_username_token_checked_by_the_server(soap_server, connector_key):
	url = f"{soap_server.base_url}/secure?wsdl"
	good = SoapClient(
		config_for(connector_key, url, ws_security=True, username=WS_USER, password=WS_PASSWORD)
	)
	assert good.call("SubmitInvoice", INVOICE)["accepted"] is True

	wrong = config_for(
		connector_key + "-w", url, ws_security=True, username=WS_USER, password="wrong-password"
	)
	with pytest.raises(SoapFaultError, match="WS-Security authentication failed") as caught:
		SoapClient(wrong).call("SubmitInvoice", INVOICE)
	assert not caught.value.retryable
	assert "wrong-password" not in str(caught.value)

	with pytest.raises(SoapFaultError, match="WS-Security authentication failed"):
		SoapClient(config_for(connector_key + "-n", url)).call("SubmitInvoice", INVOICE)


def test_fault_becomes_permanent_soap_fault_error(soap_server, connector_key):
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	with pytest.raises(SoapFaultError) as caught:
		client.call("VoidInvoice", {"number": "SINV-9999"})
	assert "Invoice SINV-9999 does not exist" in caught.value.message
	assert "UnknownInvoice" in caught.value.message
	assert caught.value.retryable is False


def test_slow_operation_times_out_as_retryable(soap_server, connector_key):
	client = SoapClient(
		config_for(connector_key, f"{soap_server.base_url}/billing?wsdl", operation_timeout=0.5)
	)
	started = time.monotonic()
	with pytest.raises(RetryableError, match=r"timed out \(operation timeout 0\.5s\)"):
		client.call("SlowEcho", {"seconds": 1.5})
	assert time.monotonic() - started < 1.4
	assert client.call("SlowEcho", {"seconds": 0.0}) == "done"


def test_http_5xx_without_fault_is_retryable(soap_server, connector_key):
	config = config_for(
		connector_key,
		f"{soap_server.base_url}/billing?wsdl",
		endpoint_override=f"{soap_server.base_url}/broken",
	)
	with pytest.raises(RetryableError, match="HTTP 503") as caught:
		SoapClient(config).call("SubmitInvoice", INVOICE)
	assert caught.value.status_code == 503
	assert "maintenance" in caught.value.response_excerpt


def test_endpoint_override_is_ssrf_checked(soap_server, connector_key):
	config = config_for(
		connector_key, f"{soap_server.base_url}/billing?wsdl", endpoint_override="http://169.254.169.254/soap"
	)
	with pytest.raises(BlockedAddressError):
		SoapClient(config).call("SubmitInvoice", INVOICE)


def test_unknown_operation_lists_valid_ones(soap_server, connector_key):
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	with pytest.raises(ConfigurationError, match="SlowEcho, SubmitInvoice, VoidInvoice"):
		client.call("DeleteEverything", {})


def test_payload_that_does_not_fit_is_a_mapping_error(soap_server, connector_key):
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	with pytest.raises(MappingError, match="SubmitInvoice"):
		client.call("SubmitInvoice", {"invoice": {"number": "X", "no_such_field": 1}})


def test_unknown_service_or_port_is_a_configuration_error(soap_server, connector_key):
	url = f"{soap_server.base_url}/billing?wsdl"
	with pytest.raises(ConfigurationError, match="it has: BillingService"):
		SoapClient(config_for(connector_key, url, service_name="Nope"))
	with pytest.raises(ConfigurationError, match="it has: Billing"):
		SoapClient(config_for(connector_key + "-p", url, service_name="BillingService", port_name="Nope"))
	named = SoapClient(
		config_for(connector_key + "-ok", url, service_name="BillingService", port_name="Billing")
	)
	assert named.call("SlowEcho", {"seconds": 0}) == "done"


def test_list_operations_for_the_desk(soap_server, connector_key):
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	operations = {op["operation"]: op for op in client.list_operations()}
	assert set(operations) == {"SubmitInvoice", "VoidInvoice", "SlowEcho"}
	assert operations["SubmitInvoice"]["service"] == "BillingService"
	assert operations["SubmitInvoice"]["port"] == "Billing"
	assert (
		"invoice" in operations["SubmitInvoice"]["input"]
		and "Invoice" in operations["SubmitInvoice"]["input"]
	)
	assert "Receipt" in operations["SubmitInvoice"]["output"]


def test_preview_envelope_masks_the_ws_security_password(soap_server, connector_key):
	config = config_for(
		connector_key,
		f"{soap_server.base_url}/secure?wsdl",
		ws_security=True,
		username=WS_USER,
		password=WS_PASSWORD,
	)
	calls_before = len(soap_server.paths)
	envelope = SoapClient(config).prepare_preview("SubmitInvoice", INVOICE)
	assert WS_PASSWORD not in envelope
	assert f">{MASK}</wsse:Password>" in envelope
	assert f"<wsse:Username>{WS_USER}</wsse:Username>" in envelope
	assert "SINV-0001" in envelope and "GADGET" in envelope
	assert soap_server.paths[calls_before:] == ["/secure"], "only the WSDL was fetched, nothing was sent"


# Hardened WSDL loading


def with_doctype(wsdl: str, doctype: str, body_insert: str = "") -> str:
	"""The real WSDL with a DOCTYPE after the XML declaration and, optionally, text inside <definitions>."""
	declaration_end = wsdl.index("?>") + 2
	text = wsdl[:declaration_end] + "\n" + doctype + "\n" + wsdl[declaration_end:]
	if body_insert:
		start = text.index(">", text.index("<wsdl:definitions")) + 1
		text = text[:start] + body_insert + text[start:]
	return text


def with_schema_import(wsdl: str, location: str) -> str:
	start = wsdl.index(">", wsdl.index("<xs:schema")) + 1
	return wsdl[:start] + f'<xs:import namespace="urn:elsewhere" schemaLocation="{location}"/>' + wsdl[start:]


@pytest.fixture
def secret_file(tmp_path_factory) -> str:
	path = tmp_path_factory.mktemp("outside") / "secret.txt"
	path.write_text(SENTINEL)
	return str(path)


LAUGHS = (
	'<!DOCTYPE lolz [<!ENTITY lol "lol">'
	+ "".join(
		f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";" if n > 1 else "&lol;") * 10}">' for n in range(1, 10)
	)
	+ "]>"
)


@pytest.mark.parametrize(
	("name", "doctype", "body"),
	[
		("dtd", "<!DOCTYPE wsdl:definitions [<!ELEMENT x ANY>]>", ""),
		("billion_laughs", LAUGHS, "<wsdl:documentation>&lol9;</wsdl:documentation>"),
		(
			"external_entity",
			'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>',
			"<wsdl:documentation>&xxe;</wsdl:documentation>",
		),
		("external_dtd", '<!DOCTYPE d SYSTEM "file://{secret}">', ""),
		("parameter_entity", '<!DOCTYPE d [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>', ""),
	],
)
def test_wsdl_with_dtd_or_entities_is_refused_unread(
	soap_server, connector_key, tmp_path, secret_file, name, doctype, body
):
	path = tmp_path / f"{name}.wsdl"
	path.write_text(with_doctype(soap_server.wsdl_text(), doctype.format(secret=secret_file), body))
	started = time.monotonic()
	with pytest.raises(ConfigurationError, match="WSDL refused: it declares a DTD") as caught:
		SoapClient(config_for(connector_key, str(path)))
	assert time.monotonic() - started < 5
	assert SENTINEL not in str(caught.value) and SENTINEL not in repr(caught.value.__context__)
	assert "lollol" not in str(caught.value)


def test_wsdl_served_over_http_with_a_dtd_is_refused(soap_server, connector_key, secret_file):
	soap_server.extra["/evil.wsdl"] = with_doctype(
		soap_server.wsdl_text(), f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret_file}">]>', "<x>&xxe;</x>"
	).encode()
	with pytest.raises(ConfigurationError, match="WSDL refused") as caught:
		SoapClient(config_for(connector_key, f"{soap_server.base_url}/evil.wsdl"))
	assert SENTINEL not in str(caught.value)


def test_schema_import_of_a_file_outside_the_wsdl_folder_is_refused(
	soap_server, connector_key, tmp_path, secret_file
):
	path = tmp_path / "imports_outside.wsdl"
	path.write_text(with_schema_import(soap_server.wsdl_text(), secret_file))
	with pytest.raises(ConfigurationError, match="only documents in the WSDL's own folder") as caught:
		SoapClient(config_for(connector_key, str(path)))
	assert SENTINEL not in str(caught.value)


def test_remote_schema_import_is_refused_without_fetching(soap_server, connector_key, tmp_path):
	path = tmp_path / "imports_remote.wsdl"
	path.write_text(with_schema_import(soap_server.wsdl_text(), f"{soap_server.base_url}/remote.xsd"))
	with pytest.raises(ConfigurationError, match="external resource"):
		SoapClient(config_for(connector_key, str(path)))
	assert "/remote.xsd" not in soap_server.paths


def test_schema_import_from_the_same_folder_is_allowed(soap_server, connector_key, tmp_path):
	(tmp_path / "common.xsd").write_text(
		'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:elsewhere">'
		'<xs:simpleType name="Code"><xs:restriction base="xs:string"/></xs:simpleType></xs:schema>'
	)
	path = tmp_path / "imports_local.wsdl"
	path.write_text(with_schema_import(soap_server.wsdl_text(), "common.xsd"))
	assert SoapClient(config_for(connector_key, str(path))).call("SlowEcho", {"seconds": 0}) == "done"


@pytest.mark.parametrize("wsdl", ["/nonexistent/service.wsdl", "{tmp}/not-xml.wsdl"])
def test_unloadable_wsdl_is_a_configuration_error(connector_key, tmp_path, wsdl):
	(tmp_path / "not-xml.wsdl").write_text("this is not xml")
	with pytest.raises(ConfigurationError, match="WSDL"):
		SoapClient(config_for(connector_key, wsdl.format(tmp=tmp_path)))


def test_wsdl_http_error_is_a_configuration_error(soap_server, connector_key):
	with pytest.raises(ConfigurationError, match="HTTP 503"):
		SoapClient(config_for(connector_key, f"{soap_server.base_url}/broken?wsdl"))


# Replies and endpoints (issue #11)


def local_wsdl(soap_server, tmp_path, address: str | None = None) -> str:
	"""The service's WSDL as a local file, optionally with another soap:address."""
	text = soap_server.wsdl_text()
	if address is not None:
		start = text.index('location="', text.index(":address ")) + len('location="')
		text = text[:start] + address + text[text.index('"', start) :]
	path = tmp_path / "billing.wsdl"
	path.write_text(text)
	return str(path)


def smuggled_address(soap_server) -> str:
	"""urlsplit reads a public host here; requests connects to the SOAP service on 127.0.0.1."""
	port = soap_server.httpd.server_address[1]
	return f"http://127.0.0.1:{port}\\@8.8.8.8:{port}/billing"


def test_smuggled_endpoint_override_is_refused(soap_server, connector_key, tmp_path):
	config = SoapConfig(
		connector_key, local_wsdl(soap_server, tmp_path), endpoint_override=smuggled_address(soap_server)
	)
	calls_before = len(soap_server.paths)
	with pytest.raises(BlockedAddressError):
		SoapClient(config).call("SlowEcho", {"seconds": 0})
	assert soap_server.paths[calls_before:] == []


def test_smuggled_soap_address_in_the_wsdl_is_refused(soap_server, connector_key, tmp_path):
	config = SoapConfig(connector_key, local_wsdl(soap_server, tmp_path, smuggled_address(soap_server)))
	calls_before = len(soap_server.paths)
	with pytest.raises(BlockedAddressError):
		SoapClient(config).call("SlowEcho", {"seconds": 0})
	assert soap_server.paths[calls_before:] == []


def test_oversized_soap_reply_is_refused(soap_server, connector_key, monkeypatch):
	monkeypatch.setattr(soap, "MAX_REPLY_BYTES", 1000)
	client = SoapClient(config_for(connector_key, f"{soap_server.base_url}/billing?wsdl"))
	assert client.call("SlowEcho", {"seconds": 0}) == "done"
	soap_server.extra["/huge"] = b"<x>" + b" " * 5000 + b"</x>"
	big = SoapClient(
		config_for(
			connector_key + "-big",
			f"{soap_server.base_url}/billing?wsdl",
			endpoint_override=f"{soap_server.base_url}/huge",
		)
	)
	with pytest.raises(PermanentError, match="larger than"):
		big.call("SlowEcho", {"seconds": 0})


def test_reply_with_a_dtd_is_a_classified_error(soap_server, connector_key):
	soap_server.extra["/dtd-reply"] = (
		b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>'
		b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&e;'
		b"</soap:Body></soap:Envelope>"
	)
	config = config_for(
		connector_key,
		f"{soap_server.base_url}/billing?wsdl",
		endpoint_override=f"{soap_server.base_url}/dtd-reply",
	)
	with pytest.raises(PermanentError, match="DTD") as caught:
		SoapClient(config).call("SlowEcho", {"seconds": 0})
	assert not caught.value.retryable


def test_soap_call_that_drips_stops_at_the_deadline(soap_server, connector_key, tmp_path):
	from test_limits import DripServer

	server = DripServer(b"<x>" + b" " * 60 + b"</x>")
	try:
		config = SoapConfig(
			connector_key,
			local_wsdl(soap_server, tmp_path),
			endpoint_override=server.base_url + "/soap",
			connect_timeout=0.5,
			operation_timeout=0.5,
			total_timeout=1.5,
			allow_private_network=True,
		)
		started = time.monotonic()
		with pytest.raises(RetryableError, match="deadline"):
			SoapClient(config).call("SlowEcho", {"seconds": 0})
		assert time.monotonic() - started < 2.5
	finally:
		server.close()
