"""Errors the engine raises. Every error knows whether trying again could help."""

from __future__ import annotations


class IntegrationError(Exception):
	"""Base class. ``retryable`` tells the worker whether a later attempt may succeed."""

	retryable: bool = False

	def __init__(self, message: str) -> None:
		super().__init__(message)
		self.message = message


class ConfigurationError(IntegrationError):
	"""The connector or mapping is set up wrongly; retrying will not help until an admin fixes it."""


class BlockedAddressError(ConfigurationError):
	"""An outbound URL points at an address the connector may not reach (metadata, link-local, ...)."""


class MappingError(IntegrationError):
	"""A record could not be mapped; ``field`` names the rule that failed when known."""

	def __init__(self, message: str, field: str | None = None) -> None:
		super().__init__(message)
		self.field = field


class TransportError(IntegrationError):
	"""A call reached (or tried to reach) the remote and did not succeed."""

	def __init__(
		self,
		message: str,
		status_code: int | None = None,
		retry_after: float | None = None,
		response_excerpt: str | None = None,
	) -> None:
		super().__init__(message)
		self.status_code = status_code
		self.retry_after = retry_after
		self.response_excerpt = response_excerpt


class RetryableError(TransportError):
	"""Timeouts, connection errors, 408/425/429/5xx: a later attempt may succeed."""

	retryable = True


class PermanentError(TransportError):
	"""The remote refused the request for good (most 4xx); the reason is kept in ``message``."""


class GoneError(PermanentError):
	"""HTTP 410: the remote endpoint is gone; the mapping should be disabled."""


class SoapFaultError(PermanentError):
	"""The SOAP service answered with a fault; ``message`` carries the fault string."""


class SignatureError(IntegrationError):
	"""An inbound signature did not verify. ``code`` is one of the ``SignatureError.*`` reasons."""

	MISSING_HEADER = "missing_header"
	MALFORMED_HEADER = "malformed_header"
	STALE_TIMESTAMP = "stale_timestamp"
	BAD_SIGNATURE = "bad_signature"

	def __init__(self, code: str, message: str) -> None:
		super().__init__(message)
		self.code = code
