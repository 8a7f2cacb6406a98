"""Identifiers that sort by the time they were made."""

from __future__ import annotations

import secrets
import string
import time

ALPHABET = string.digits + string.ascii_lowercase
TIME_DIGITS = 10
"""Microseconds since 2020 in base 36: ten digits last until the year 2134."""
EPOCH_2020_US = 1_577_836_800_000_000
RANDOM_DIGITS = 4


def time_ordered_id() -> str:
	"""14 base-36 characters: 10 of microseconds since 2020, then 4 random ones to tell apart ids made in the
	same microsecond (by several processes). Later ids sort after earlier ones, as text."""
	value = time.time_ns() // 1000 - EPOCH_2020_US
	digits = []
	for _ in range(TIME_DIGITS):
		value, digit = divmod(value, 36)
		digits.append(ALPHABET[digit])
	return "".join(reversed(digits)) + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_DIGITS))
