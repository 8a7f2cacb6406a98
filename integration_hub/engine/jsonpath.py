"""JMESPath expressions from configuration, compiled once with a readable error for a typo."""

from __future__ import annotations

import re
from typing import Any

import jmespath
import jmespath.exceptions

from integration_hub.engine.errors import ConfigurationError

SPECIAL_KEY = re.compile(r"[@$-]")


def compile_path(expression: str, what: str) -> Any:
	"""The compiled expression; ConfigurationError naming ``what`` (e.g. "records path") when it is invalid."""
	try:
		return jmespath.compile(expression)
	except jmespath.exceptions.JMESPathError as exc:
		special = SPECIAL_KEY.search(expression) and '"' not in expression
		hint = ' (quote keys with special characters: "@odata.nextLink")' if special else ""
		raise ConfigurationError(f"Invalid {what} {expression!r}: {exc}{hint}") from None


def optional_path(expression: str, what: str) -> Any:
	"""``compile_path`` for a setting that may be left empty (None then)."""
	return compile_path(expression, what) if expression else None
