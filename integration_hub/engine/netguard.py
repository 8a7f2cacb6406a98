"""Outbound address guard (SSRF): refuse URLs whose host resolves to an address a connector may not reach."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests

from integration_hub.engine.errors import BlockedAddressError, ConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
LOOPBACK_REASON = "a loopback address (enable 'allow private network' on the connector to permit it)"


def check_url(url: str, allow_private_network: bool = False) -> None:
	"""Raise BlockedAddressError unless ``url`` is http(s) and every address of its host may be reached.

	Link-local (incl. the cloud metadata address), unspecified, multicast and reserved addresses are
	always refused; loopback, private and CGNAT ranges only unless ``allow_private_network``.
	"""
	try:
		parts = urlsplit(url)
		port = parts.port
	except ValueError as exc:
		raise ConfigurationError(f"Invalid URL {url!r}: {exc}") from None
	scheme = parts.scheme.lower()
	if scheme not in ALLOWED_SCHEMES:
		shown = scheme or "(none)"
		raise BlockedAddressError(f"URL scheme {shown!r} is not allowed in {url!r}; use http or https")
	host = parts.hostname
	if not host:
		raise ConfigurationError(f"URL {url!r} has no host")
	for address in resolve(host, port or (443 if scheme == "https" else 80)):
		reason = refusal_reason(address, allow_private_network)
		if reason:
			raise BlockedAddressError(
				f"Refusing to connect to host {host!r}: it resolves to {address}, {reason}"
			)


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


class GuardedSession(requests.Session):
	"""A Session that checks every URL with :func:`check_url` and never follows redirects.

	Redirects are returned to the caller as 3xx answers, so a remote cannot bounce a request (with
	its credentials) to an address the guard would refuse. Proxies from the environment are ignored
	for the same reason.
	"""

	def __init__(self, allow_private_network: bool = False) -> None:
		super().__init__()
		self.allow_private_network = allow_private_network
		self.trust_env = False

	def request(self, method, url, *args, **kwargs):
		check_url(str(url), self.allow_private_network)
		return super().request(method, url, *args, **kwargs)

	def get_redirect_target(self, resp):
		return None
