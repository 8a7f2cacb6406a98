"""SOAP transport on zeep, hardened: no DTDs, entities or external references, SSRF-checked URLs, timeouts.

A WSDL is loaded from a local file (preferred: bundled or attached) or an http(s) URL. Documents it
imports are read only when the WSDL is a local file and they sit in the same folder; nothing else it
references is ever fetched or opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from integration_hub.engine.errors import (
	ConfigurationError,
	IntegrationError,
	MappingError,
	PermanentError,
	RetryableError,
	SoapFaultError,
)
from integration_hub.engine.limits import deadline_exceeded, read_limited, total_deadline
from integration_hub.engine.netguard import GuardedSession, split_url
from integration_hub.engine.redact import redact_text, redact_wsse

IMPORTABLE_EXTENSIONS = (".xsd", ".wsdl", ".xml")
MAX_WSDL_BYTES = 8 * 1024 * 1024
MAX_REPLY_BYTES = 32 * 1024 * 1024
XML_REFUSALS = (
	zeep.exceptions.DTDForbidden,
	zeep.exceptions.EntitiesForbidden,
	zeep.exceptions.ExternalReferenceForbidden,
)
RETRYABLE_HTTP = frozenset({408, 425, 429})
DOCTYPE = re.compile(rb"<!DOCTYPE\s*([\w:.-]*)")


@dataclass
class SoapConfig:
	connector_key: str
	wsdl: str
	"""Local file path (or file:// URL) or an http(s) URL."""
	service_name: str = ""
	port_name: str = ""
	endpoint_override: str = ""
	connect_timeout: float = 5.0
	operation_timeout: float = 30.0
	verify_tls: bool = True
	ws_security: bool = False
	username: str = ""
	password: str = field(default="", repr=False)
	allow_private_network: bool = False
	total_timeout: float = 0.0
	"""Most seconds one exchange (WSDL load or call) may take; 0 means connect + 2 * operation timeout."""

	def deadline(self) -> float:
		return total_deadline(self.connect_timeout, self.operation_timeout, self.total_timeout)

	@property
	def is_remote(self) -> bool:
		return self.wsdl.lower().startswith(("http://", "https://"))

	def local_path(self) -> str:
		return os.path.abspath(os.path.expanduser(self.wsdl.removeprefix("file://")))

	def fingerprint(self) -> str:
		"""Changes with any setting, and with the WSDL file itself when it is local."""
		material: dict[str, Any] = {
			name: getattr(self, name) for name in self.__dataclass_fields__ if name != "connector_key"
		}
		if not self.is_remote:
			try:
				stat = os.stat(self.local_path())
				material["file"] = [stat.st_mtime_ns, stat.st_size]
			except OSError:
				material["file"] = None
		return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class GuardedTransport(Transport):
	"""Loads the WSDL itself and nothing else but same-folder imports of a local WSDL."""

	def __init__(self, config: SoapConfig, session: GuardedSession) -> None:
		timeouts = (config.connect_timeout, config.operation_timeout)
		super().__init__(session=session, timeout=timeouts, operation_timeout=timeouts)
		self.config = config
		self.root = config.wsdl if config.is_remote else config.local_path()
		self.folder = None if config.is_remote else os.path.dirname(os.path.realpath(self.root))

		self.local = threading.local()

	def load(self, url: str) -> bytes:
		"""The bytes of the WSDL or of a document it imports, refused before parsing if they carry a DTD."""
		return refuse_doctype(self.read(url), url)

	def read(self, url: str) -> bytes:
		if url == self.root:
			return self.fetch_root() if self.config.is_remote else read_file(self.root)
		if self.folder is not None and not url.lower().startswith(("http://", "https://")):
			path = os.path.realpath(url.removeprefix("file://"))
			inside = os.path.dirname(path) == self.folder or path.startswith(self.folder + os.sep)
			if inside and path.lower().endswith(IMPORTABLE_EXTENSIONS):
				return read_file(path)
		raise ConfigurationError(
			f"WSDL refused: it references {url!r}; only documents in the WSDL's own folder may be imported"
		)

	def post(self, address, message, headers):
		"""Send the envelope and read the reply up to MAX_REPLY_BYTES.

		This thread's last reply is remembered, so an HTTP error without a SOAP fault can be told apart.
		"""
		self.local.last_reply = None
		response = self.session.post(
			address, data=message, headers=headers, timeout=self.operation_timeout, stream=True
		)
		with response:
			body = read_limited(response, MAX_REPLY_BYTES, "The SOAP reply")
		self.local.last_reply = (response.status_code, body[:500])
		return response

	def last_reply(self) -> tuple[int, bytes] | None:
		"""Status and start of the body of this thread's last SOAP reply."""
		return getattr(self.local, "last_reply", None)

	def fetch_root(self) -> bytes:
		response = self.session.get(self.root, timeout=self.load_timeout, allow_redirects=False, stream=True)
		with response:
			if response.status_code != 200:
				raise ConfigurationError(f"WSDL {self.root} could not be loaded: HTTP {response.status_code}")
			return read_limited(response, MAX_WSDL_BYTES, f"WSDL {self.root}")


def refuse_doctype(content: bytes, where: str) -> bytes:
	"""Refuse a document with a DOCTYPE before any parser sees it (entity expansion, external entities)."""
	match = DOCTYPE.search(content)
	if match is None:
		return content
	name = match.group(1).decode("ascii", errors="replace")
	entities = " with entity declarations" if b"<!ENTITY" in content else ""
	raise ConfigurationError(
		f"WSDL refused: it declares a DTD{entities} (<!DOCTYPE {name}>) in {where}; DTDs, entities and "
		"external references are not allowed"
	)


def read_file(path: str) -> bytes:
	try:
		with open(path, "rb") as handle:
			return handle.read()
	except OSError as exc:
		raise ConfigurationError(f"WSDL file {path} could not be read: {exc.strerror}") from None


def wsdl_refusal(exc: Exception, where: str) -> ConfigurationError:
	"""A clear, content-free message for a WSDL zeep refused or could not parse."""
	if isinstance(exc, zeep.exceptions.DTDForbidden):
		return ConfigurationError(
			f"WSDL refused: it declares a DTD (<!DOCTYPE {exc.name}>); DTDs, entities and external "
			f"references are not allowed ({where})"
		)
	if isinstance(exc, zeep.exceptions.EntitiesForbidden):
		return ConfigurationError(f"WSDL refused: it declares the XML entity {exc.name!r} ({where})")
	if isinstance(exc, zeep.exceptions.ExternalReferenceForbidden):
		return ConfigurationError(f"WSDL refused: it references the external resource {exc.url!r} ({where})")
	message = getattr(exc, "message", "") or str(exc)
	return ConfigurationError(f"WSDL {where} could not be loaded: {type(exc).__name__}: {message[:300]}")


@dataclass
class BuiltClient:
	client: zeep.Client
	service: Any
	fingerprint: str


CLIENTS: dict[str, BuiltClient] = {}
CLIENTS_LOCK = threading.Lock()


class SoapClient:
	"""Calls one connector's SOAP service; the parsed WSDL is cached per connector and config."""

	def __init__(self, config: SoapConfig) -> None:
		if not config.wsdl:
			raise ConfigurationError(f"Connector {config.connector_key!r} has no WSDL")
		self.config = config
		self.secrets = [config.password] if config.password else []
		built = self.cached_or_built()
		self.client = built.client
		self.service = built.service

	def cached_or_built(self) -> BuiltClient:
		fingerprint = self.config.fingerprint()
		with CLIENTS_LOCK:
			cached = CLIENTS.get(self.config.connector_key)
			if cached and cached.fingerprint == fingerprint:
				return cached
		built = self.build(fingerprint)
		with CLIENTS_LOCK:
			previous = CLIENTS.get(self.config.connector_key)
			CLIENTS[self.config.connector_key] = built
		if previous is not None:
			previous.client.transport.session.close()
		return built

	def build(self, fingerprint: str) -> BuiltClient:
		config = self.config
		session = GuardedSession(config.allow_private_network, config.deadline())
		session.verify = config.verify_tls
		settings = zeep.Settings(
			strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
		)
		wsse = UsernameToken(config.username, config.password) if config.ws_security else None
		transport = GuardedTransport(config, session)
		where = config.wsdl
		started = time.perf_counter()
		try:
			client = zeep.Client(wsdl=transport.root, transport=transport, settings=settings, wsse=wsse)
		except IntegrationError:
			raise
		except requests.Timeout:
			deadline = deadline_exceeded(session, started, time.perf_counter())
			limit = f"its total deadline of {deadline:g}s" if deadline else f"{config.operation_timeout:g}s"
			raise RetryableError(f"Loading WSDL {where} timed out after {limit}") from None
		except requests.RequestException as exc:
			raise RetryableError(f"WSDL {where} could not be fetched: {type(exc).__name__}") from None
		except Exception as exc:
			raise wsdl_refusal(exc, where) from None
		return BuiltClient(client, self.bind(client), fingerprint)

	def bind(self, client: zeep.Client) -> Any:
		config = self.config
		services = client.wsdl.services
		if not services:
			raise ConfigurationError("The WSDL defines no service")
		service = services.get(config.service_name) if config.service_name else next(iter(services.values()))
		if service is None:
			raise ConfigurationError(
				f"Service {config.service_name!r} is not in the WSDL; it has: {', '.join(services)}"
			)
		port = service.ports.get(config.port_name) if config.port_name else next(iter(service.ports.values()))
		if port is None:
			raise ConfigurationError(
				f"Port {config.port_name!r} is not in service {service.name!r}; it has: {', '.join(service.ports)}"
			)
		address = config.endpoint_override or port.binding_options.get("address") or ""
		if address:
			split_url(address)
		if config.endpoint_override:
			return client.create_service(port.binding.name, config.endpoint_override)
		return client.bind(service.name, port.name)

	def operation_names(self) -> list[str]:
		return sorted(self.service._binding.all())

	def operation(self, name: str) -> Any:
		if name not in self.service._binding.all():
			valid = ", ".join(self.operation_names()) or "(none)"
			raise ConfigurationError(f"SOAP operation {name!r} is not in the WSDL; valid operations: {valid}")
		return self.service[name]

	def call(self, operation: str, payload: dict) -> Any:
		"""Call ``operation`` with ``payload`` as keyword arguments; returns plain dicts/lists.

		Whatever the call raises comes out as an IntegrationError, so the worker can always classify it.
		"""
		method = self.operation(operation)
		started = time.perf_counter()
		try:
			result = method(**payload)
		except IntegrationError:
			raise
		except Exception as exc:
			raise self.call_error(operation, exc, started) from None
		return serialize_object(result, target_cls=dict)

	def call_error(self, operation: str, exc: Exception, started: float) -> IntegrationError:
		"""The classified, secret-free engine error for whatever a SOAP call raised."""
		if isinstance(exc, zeep.exceptions.Fault):
			return self.fault_error(operation, exc)
		if isinstance(exc, requests.RequestException):
			return self.request_error(operation, exc, started)
		if isinstance(exc, zeep.exceptions.TransportError):
			return self.http_error(operation, exc)
		if isinstance(exc, zeep.exceptions.ValidationError | TypeError):
			return MappingError(f"Payload does not fit SOAP operation {operation}: {exc}")
		if isinstance(exc, zeep.exceptions.XMLSyntaxError):
			return PermanentError(f"SOAP call {operation} got a reply that is not valid XML: {exc.message}")
		if isinstance(exc, XML_REFUSALS):
			return PermanentError(
				f"SOAP call {operation} got a reply with a DTD, entity or external reference, which is refused"
			)
		reason = redact_text(getattr(exc, "message", "") or str(exc), self.secrets)[:300]
		return PermanentError(f"SOAP call {operation} failed: {type(exc).__name__}: {reason}")

	def fault_error(self, operation: str, fault: zeep.exceptions.Fault) -> IntegrationError:
		reply = self.client.transport.last_reply()
		if fault.code is None and reply is not None and reply[0] != 200:
			status, content = reply
			return self.http_error(
				operation, zeep.exceptions.TransportError(status_code=status, content=content)
			)
		reason = redact_text(str(fault.message or "unknown fault"), self.secrets)
		code = f" [{fault.code}]" if fault.code else ""
		return SoapFaultError(f"SOAP fault from {operation}{code}: {reason}")

	def request_error(self, operation: str, exc: requests.RequestException, started: float) -> RetryableError:
		deadline = deadline_exceeded(self.client.transport.session, started, time.perf_counter())
		if deadline is not None:
			return RetryableError(
				f"SOAP call {operation} did not finish within its total deadline of {deadline:g}s"
			)
		if isinstance(exc, requests.Timeout):
			return RetryableError(
				f"SOAP call {operation} timed out (operation timeout {self.config.operation_timeout:g}s)"
			)
		return RetryableError(f"SOAP call {operation} could not reach the service: {type(exc).__name__}")

	def http_error(self, operation: str, exc: zeep.exceptions.TransportError) -> Exception:
		status = exc.status_code or None
		excerpt = redact_text((exc.content or b"")[:500].decode("utf-8", errors="replace"), self.secrets)
		message = f"SOAP call {operation} failed: HTTP {status}"
		if status is not None and (status >= 500 or status in RETRYABLE_HTTP):
			return RetryableError(message, status_code=status, response_excerpt=excerpt)
		return PermanentError(message, status_code=status, response_excerpt=excerpt)

	def list_operations(self) -> list[dict[str, str]]:
		"""Every operation of every service and port, with readable input/output signatures."""
		found = []
		for service in self.client.wsdl.services.values():
			for port in service.ports.values():
				for name, operation in sorted(port.binding.all().items()):
					found.append(
						{
							"service": service.name,
							"port": port.name,
							"operation": name,
							"input": operation.input.signature() if operation.input else "",
							"output": operation.output.signature(as_output=True) if operation.output else "",
						}
					)
		return found

	def prepare_preview(self, operation: str, payload: dict) -> str:
		"""The envelope as it would be sent, with WS-Security password and nonce masked."""
		self.operation(operation)
		try:
			envelope = self.client.create_message(self.service, operation, **payload)
		except (zeep.exceptions.ValidationError, TypeError) as exc:
			raise MappingError(f"Payload does not fit SOAP operation {operation}: {exc}") from None
		text = etree.tostring(envelope, pretty_print=True, encoding="unicode")
		return redact_text(redact_wsse(text), self.secrets)


def clear_cache() -> None:
	"""Forget every built client (tests, after a bulk config change)."""
	with CLIENTS_LOCK:
		CLIENTS.clear()
