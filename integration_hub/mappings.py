"""Turns Mapping documents into compiled engine mappings, and keeps the index the dispatcher reads."""

from __future__ import annotations

import frappe
from frappe import _

from integration_hub.engine.errors import MappingError
from integration_hub.engine.mapping import CompiledMapping, FieldRule, compile_condition, compile_mapping

OUTBOUND_INDEX_KEY = "integration_hub:outbound_index"
STANDARD_FIELDS = frozenset(
	{
		"name",
		"owner",
		"creation",
		"modified",
		"modified_by",
		"docstatus",
		"idx",
		"doctype",
		"parent",
		"parenttype",
		"parentfield",
	}
)
_compiled: dict[tuple[str, str], tuple[CompiledMapping, object]] = {}


def field_rules(mapping) -> list[FieldRule]:
	return [
		FieldRule(
			target=row.target.strip(),
			source=(row.source or "").strip(),
			source_type=(row.source_type or "Field").lower(),
			transform=row.transform or "",
			argument=row.argument or "",
			required=bool(row.required),
			default=row.default_value if row.default_value not in (None, "") else None,
		)
		for row in mapping.fields
	]


def compile_mapping_doc(mapping) -> tuple[CompiledMapping, object]:
	"""Compile a Mapping's rules and condition once per version of the document (name + modified)."""
	key = (mapping.name, str(mapping.modified))
	if key not in _compiled:
		for stale in [k for k in _compiled if k[0] == mapping.name]:
			del _compiled[stale]
		_compiled[key] = (
			compile_mapping(field_rules(mapping), mapping.body_template or ""),
			compile_condition(mapping.condition or ""),
		)
	return _compiled[key]


def tables_read_by(mapping) -> frozenset[str] | None:
	"""Child tables the mapping's rows read, or None when a template or expression may read any of them."""
	if mapping.body_template or any(row.source_type == "Expression" for row in mapping.fields):
		return None
	return frozenset(
		(row.source or "").split(".", 1)[0].split("[", 1)[0]
		for row in mapping.fields
		if row.source_type in ("Field", "Path")
	)


def get_outbound_index() -> dict[str, dict[str, list[str]]]:
	"""{doctype: {event: [mapping names]}} of enabled outbound mappings; cached until a Mapping changes."""
	return frappe.cache.get_value(OUTBOUND_INDEX_KEY, build_outbound_index)


def build_outbound_index() -> dict[str, dict[str, list[str]]]:
	index: dict[str, dict[str, list[str]]] = {}
	mapping = frappe.qb.DocType("Mapping")
	event = frappe.qb.DocType("Mapping Event")
	connector = frappe.qb.DocType("Connector")
	rows = (
		frappe.qb.from_(mapping)
		.join(event)
		.on(event.parent == mapping.name)
		.join(connector)
		.on(connector.name == mapping.connector)
		.select(mapping.name, mapping.source_doctype, event.event)
		.where(
			(mapping.enabled == 1)
			& (connector.enabled == 1)
			& (mapping.direction == "Outbound")
			& (event.parenttype == "Mapping")
		)
		.orderby(mapping.name)
	).run(as_dict=True)
	for row in rows:
		index.setdefault(row.source_doctype, {}).setdefault(row.event, []).append(row.name)
	return index


def clear_outbound_index() -> None:
	frappe.cache.delete_value(OUTBOUND_INDEX_KEY)


def doctype_path_error(doctype: str, path: str) -> str | None:
	"""Why ``path`` (``customer``, ``items[].item_code``) names no field of ``doctype``, or None when it does."""
	meta = frappe.get_meta(doctype)
	segments = [segment.split("[", 1)[0] for segment in path.split(".") if segment]
	if not segments:
		return _("the path is empty")
	for position, fieldname in enumerate(segments):
		if fieldname in STANDARD_FIELDS and position == len(segments) - 1:
			return None
		df = meta.get_field(fieldname)
		if not df:
			return _("{0} has no field {1}").format(_(meta.name), frappe.bold(fieldname))
		if position == len(segments) - 1:
			return None
		if df.fieldtype in frappe.model.table_fields:
			meta = frappe.get_meta(df.options)
		elif df.fieldtype == "JSON":
			return None
		else:
			return _("{0} is a {1} field and has no sub-fields").format(
				frappe.bold(fieldname), _(df.fieldtype)
			)
	return None


def validation_message(error: MappingError) -> str:
	if error.field:
		return _("Mapping row for {0}: {1}").format(frappe.bold(error.field), error.message)
	return error.message
