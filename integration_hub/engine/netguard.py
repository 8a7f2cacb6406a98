"""Outbound address guard (SSRF): refuse URLs whose host resolves to an address a connector may not reach.

The check runs where the connection is made: :class:`PinnedAdapter` reads the host from the request as
requests prepared it (the same parse requests uses to connect), resolves it once with :func:`resolve`, checks
every address and connects to the checked one, keeping the name for the Host header, SNI and certificate
checks. A second lookup by urllib3, which a TTL-0 name could answer differently, never happens.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool

from integration_hub.engine.errors import BlockedAddressError, ConfigurationError
from integration_hub.engine.limits import WATCHED_POOLS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
LOOPBACK_REASON = "a loopback address (enable 'allow private network' on the connector to permit it)"


@dataclass(frozen=True)
class Origin:
	scheme: str
	host: str
	port: int

	def host_header(self) -> str:
		"""The Host header value: the name as written in the URL, with the port unless it is the default."""
		host = f"[{self.host}]" if ":" in self.host else self.host
		return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Target(Origin):
	address: IPAddress
	"""The checked address to connect to."""


DEFAULT_PORTS = {"http": 80, "https": 443}


def split_url(url: str) -> tuple[SplitResult, Origin]:
	"""Parse an outbound URL, refusing anything parsers may read differently: backslashes and userinfo."""
	if "\\" in url:
		raise BlockedAddressError(
			f"URL {shown(url)!r} contains a backslash; parsers disagree on where its host is"
		)
	try:
		parts = urlsplit(url)
		port = parts.port
	except ValueError as exc:
		raise ConfigurationError(f"Invalid URL {shown(url)!r}: {exc}") from None
	scheme = parts.scheme.lower()
	if scheme not in ALLOWED_SCHEMES:
		given = scheme or "(none)"
		raise BlockedAddressError(f"URL scheme {given!r} is not allowed in {shown(url)!r}; use http or https")
	if "@" in parts.netloc:
		raise BlockedAddressError(
			f"URL {parts.scheme}://{parts.netloc.rpartition('@')[2]}/… carries a user name or password "
			"before its host; give credentials in the connector's authentication instead"
		)
	if not parts.hostname:
		raise ConfigurationError(f"URL {shown(url)!r} has no host")
	return parts, Origin(scheme, parts.hostname, port or DEFAULT_PORTS[scheme])


def shown(url: str) -> str:
	"""``url`` without its query and fragment, for messages: a query may carry an API key."""
	return url.split("?", 1)[0].split("#", 1)[0]


def origin_of(url: str) -> Origin:
	"""Scheme, host and port of an outbound URL (refused like :func:`split_url` refuses)."""
	return split_url(url)[1]


def check_url(url: str, allow_private_network: bool = False) -> Target:
	"""Raise BlockedAddressError unless ``url`` is http(s) and every address of its host may be reached.

	Link-local (incl. the cloud metadata address), unspecified, multicast and reserved addresses are
	always refused; loopback, private and CGNAT ranges only unless ``allow_private_network``. Returns the
	origin with the first address, the one to connect to.
	"""
	origin = origin_of(url)
	addresses = resolve(origin.host, origin.port)
	for address in addresses:
		reason = refusal_reason(address, allow_private_network)
		if reason:
			raise BlockedAddressError(
				f"Refusing to connect to host {origin.host!r}: it resolves to {address}, {reason}"
			)
	return Target(origin.scheme, origin.host, origin.port, addresses[0])


def resolve(host: str, port: int) -> list[IPAddress]:
	"""Every address ``host`` resolves to (an IP literal resolves to itself)."""
	try:
		infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
	except (socket.gaierror, UnicodeError, OSError) as exc:
		raise ConfigurationError(f"Cannot resolve host {host!r}: {exc}") from None
	addresses: list[IPAddress] = []
	for _family, _type, _proto, _canonname, sockaddr in infos:
		address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
		if address not in addresses:
			addresses.append(address)
	if not addresses:
		raise ConfigurationError(f"Cannot resolve host {host!r}: no addresses")
	return addresses


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
	"""The IPv4 address carried inside an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
	if not isinstance(address, ipaddress.IPv6Address):
		return None
	if address.ipv4_mapped is not None:
		return address.ipv4_mapped
	if address.sixtofour is not None:
		return address.sixtofour
	if address in NAT64_PREFIX:
		return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
	return None


def refusal_reason(address: IPAddress, allow_private_network: bool) -> str | None:
	"""Why ``address`` may not be reached, or None when it may."""
	inner = embedded_ipv4(address)
	if inner is not None:
		reason = refusal_reason(inner, allow_private_network)
		return f"which embeds {inner}, {reason}" if reason else None
	if address.is_link_local:
		return "a link-local address (this range holds the cloud metadata service)"
	if address.is_unspecified or address in THIS_NETWORK:
		return "an unspecified address"
	if address.is_multicast:
		return "a multicast address"
	if address.is_loopback:
		return None if allow_private_network else LOOPBACK_REASON
	if address.is_reserved:
		return "a reserved address"
	if allow_private_network:
		return None
	private = address.is_private or address in SHARED_ADDRESS_SPACE or not address.is_global
	if private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
		return "a private-network address (enable 'allow private network' on the connector to permit it)"
	return None


class PinnedAdapter(HTTPAdapter):
	"""Checks the prepared URL and connects to the checked address, with the name kept for Host and TLS.

	Each pool is keyed by address and name, so keep-alive connections are reused only for an address
	that was checked. Every exchange has a total deadline of ``total_timeout`` seconds (see
	:mod:`integration_hub.engine.limits`).
	"""

	def __init__(
		self, allow_private_network: bool = False, total_timeout: float | None = None, **kwargs
	) -> None:
		self.allow_private_network = allow_private_network
		self.total_timeout = total_timeout
		super().__init__(**kwargs)

	def init_poolmanager(self, *args, **kwargs) -> None:
		super().init_poolmanager(*args, **kwargs)
		self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

	def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None) -> HTTPConnectionPool:
		"""The pool for the checked address of ``request`` (whose Host header is set to the URL's name)."""
		try:
			host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
		except ValueError as exc:
			raise ConfigurationError(f"Invalid URL {shown(str(request.url))!r}: {exc}") from None
		target = check_url(str(request.url), self.allow_private_network)
		if (target.host, target.port) != (host_params["host"], host_params["port"] or target.port):
			raise BlockedAddressError(f"URL {shown(str(request.url))!r} names its host ambiguously")
		if "Host" not in request.headers:
			request.headers["Host"] = target.host_header()
		if target.scheme == "https":
			pool_kwargs["server_hostname"] = target.host
		pool = self.poolmanager.connection_from_host(
			scheme=target.scheme, host=str(target.address), port=target.port, pool_kwargs=pool_kwargs
		)
		pool.total_timeout = self.total_timeout
		return pool


class GuardedSession(requests.Session):
	"""A Session that only connects to checked addresses (:class:`PinnedAdapter`) and never follows redirects.

	Redirects are returned to the caller as 3xx answers, so a remote cannot bounce a request (with
	its credentials) to an address the guard would refuse. Proxies from the environment are ignored
	for the same reason. A URL that parsers could read differently is refused before anything is
	prepared (and before an OAuth token is fetched for it).
	"""

	def __init__(
		self, allow_private_network: bool = False, total_timeout: float | None = None, pool_size: int = 10
	) -> None:
		super().__init__()
		self.allow_private_network = allow_private_network
		self.total_timeout = total_timeout
		self.trust_env = False
		adapter = PinnedAdapter(
			allow_private_network,
			total_timeout,
			pool_connections=4,
			pool_maxsize=max(pool_size, 1),
			max_retries=0,
		)
		self.mount("http://", adapter)
		self.mount("https://", adapter)

	def request(self, method, url, *args, **kwargs):
		split_url(str(url))
		return super().request(method, url, *args, **kwargs)

	def get_redirect_target(self, resp):
		return None
