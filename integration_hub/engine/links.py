"""Link resolution for inbound records: remote values (a SKU, a device id, an e-mail) → ERPNext names.

A ``LinkRule`` is plain data: which field of the mapped document holds a reference (``customer``, or
``items[].item_code`` for a child table), which DocType it points to, and how a remote value finds a record
there — as the record's name, through a field of that DocType (``attendance_device_id``), or through the
connector's Integration Bindings. The glue supplies ``lookup``, one query per rule and document; this
module walks the document, applies defaults, and names the field, row and value of every miss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import MappingError

MatchBy = Literal["name", "field", "binding"]


@dataclass(frozen=True)
class LinkRule:
	target: str
	"""``customer``, or ``items[].item_code`` for a field of every row of a child table."""
	doctype: str
	match_by: MatchBy = "name"
	match_field: str = ""
	default: str | None = None
	create_with: str = ""
	"""An inbound mapping that creates the record when no match exists (the glue's ``create`` runs it)."""
	create_from: str = ""
	"""Where the record holds what that mapping reads (e.g. ``customer``, or ``lines`` for child rows)."""

	@property
	def table(self) -> str | None:
		return self.target.split("[]", 1)[0] if "[]." in self.target else None

	@property
	def fieldname(self) -> str:
		return self.target.rsplit(".", 1)[-1] if self.table else self.target

	def describe_match(self) -> str:
		if self.match_by == "field":
			return f"by {self.match_field}"
		if self.match_by == "binding":
			return "by its binding to this connector"
		return "by name"


Lookup = Callable[[LinkRule, list[str]], Mapping[str, str]]
"""Given a rule and distinct remote values, the ERPNext name found for each value (absent when none)."""
Create = Callable[[LinkRule, str], "str | None"]
"""Given a rule and a value nothing matched, the name of a record made for it, or None."""


def parse_link_target(target: str) -> tuple[str | None, str]:
	"""``items[].item_code`` → ("items", "item_code"); ``customer`` → (None, "customer")."""
	text = target.strip()
	if text.count("[]") > 1 or ("[]" in text and not text.split("[]", 1)[1].startswith(".")):
		raise MappingError(
			f"link target {target!r}: use a field (customer) or one child table (items[].item_code)"
		)
	if "[]" in text:
		table, field = text.split("[].", 1)
		if not table or not field or "." in field or "." in table:
			raise MappingError(f"link target {target!r}: expected table[].field")
		return table, field
	if "." in text or not text:
		raise MappingError(f"link target {target!r}: expected a field name")
	return None, text


def _slots(document: dict[str, Any], rule: LinkRule) -> Iterator[tuple[dict[str, Any], str]]:
	"""Every (container, where) that holds the rule's field: the document itself or each row of its table."""
	table, _field = parse_link_target(rule.target)
	if table is None:
		yield document, ""
		return
	rows = document.get(table) or []
	if not isinstance(rows, list):
		raise MappingError(f"{table} should be a list of rows", field=rule.target)
	for number, row in enumerate(rows, 1):
		if isinstance(row, dict):
			yield row, f" in {table} row {number}"


def resolve_links(
	document: dict[str, Any], rules: Sequence[LinkRule], lookup: Lookup, create: Create | None = None
) -> None:
	"""Replace remote values by ERPNext names in place; one MappingError naming every value not found.

	A value nothing matches is passed to ``create`` (once per value) when the rule says how to create it.
	"""
	problems: list[str] = []
	first_field = ""
	for rule in rules:
		_table, field = parse_link_target(rule.target)
		slots = list(_slots(document, rule))
		for container, _where in slots:
			if container.get(field) in (None, "") and rule.default not in (None, ""):
				container[field] = rule.default
		wanted = sorted({str(c[field]) for c, _w in slots if c.get(field) not in (None, "")})
		found = dict(lookup(rule, wanted)) if wanted else {}
		if create is not None and rule.create_with:
			for value in wanted:
				if value not in found and (made := create(rule, value)):
					found[value] = made
		for container, where in slots:
			value = container.get(field)
			if value in (None, ""):
				continue
			name = found.get(str(value))
			if name is None:
				problems.append(
					f"{rule.doctype} {str(value)!r} for {field}{where} was not found ({rule.describe_match()})"
				)
				first_field = first_field or rule.target
			else:
				container[field] = name
	if problems:
		raise MappingError("; ".join(problems), field=first_field)
