"""Turns Mapping documents into compiled engine mappings, and keeps the index the dispatcher reads."""

from __future__ import annotations

import frappe
from frappe import _

from integration_hub.engine.errors import MappingError
from integration_hub.engine.mapping import CompiledMapping, FieldRule, compile_condition, compile_mapping
from integration_hub.inbound.builders import builder_for

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


def reads_whole_document(mapping) -> bool:
	"""Whether a template or expression of the mapping can see every field of the document, not only mapped ones."""
	templates = [mapping.idempotency_key_template, *(row.path for row in mapping.events)]
	return bool(
		mapping.body_template
		or (mapping.condition or "").strip()
		or any(row.source_type == "Expression" or row.transform == "template" for row in mapping.fields)
		or any("{" in (text or "") for text in templates)
	)


def unreadable_fields(mapping) -> list[str]:
	"""``DocType.field`` names the mapping sends (or, through a template, could send) that the session user
	may not read at their permission level."""
	if reads_whole_document(mapping):
		return restricted_fields(mapping.source_doctype)
	paths = [row.source for row in mapping.fields if row.source_type in ("Field", "Path") and row.source]
	return [field for field in (restricted_on_path(mapping.source_doctype, path) for path in paths) if field]


def restricted_fields(doctype: str, parenttype: str | None = None) -> list[str]:
	"""Fields of ``doctype`` (and of its child tables) at a permlevel the session user may not read."""
	meta = frappe.get_meta(doctype)
	allowed = set(meta.get_permlevel_access("read", parenttype=parenttype))
	found = [
		f"{doctype}.{df.fieldname}" for df in meta.fields if df.permlevel and df.permlevel not in allowed
	]
	if parenttype is None:
		for table in meta.get_table_fields():
			found.extend(restricted_fields(table.options, doctype))
	return found


def restricted_on_path(doctype: str, path: str) -> str | None:
	"""The first field on ``path`` (``items[].rate``) at a permlevel the session user may not read."""
	meta, parenttype = frappe.get_meta(doctype), None
	for fieldname in [segment.split("[", 1)[0] for segment in path.strip().split(".") if segment]:
		df = meta.get_field(fieldname)
		if df is None:
			return None
		if df.permlevel and df.permlevel not in meta.get_permlevel_access("read", parenttype=parenttype):
			return f"{meta.name}.{fieldname}"
		if df.fieldtype not in frappe.model.table_fields:
			return None
		meta, parenttype = frappe.get_meta(df.options), doctype
	return None


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


def field_path_errors(mapping) -> list[tuple[object, str]]:
	"""(row, message) for every row whose DocType-side field does not exist: the source of an outbound row
	read by field or path, the target of an inbound row."""
	outbound = mapping.direction == "Outbound"
	doctype = mapping.source_doctype if outbound else mapping.target_doctype
	label = _("Source") if outbound else _("Target")
	builder = None if outbound else builder_for(mapping)
	errors = []
	for row in mapping.fields:
		if builder is not None:
			if (row.target or "").strip() not in builder.inputs:
				errors.append((row, builder_input_message(mapping, row, builder)))
			continue
		path = (row.source if outbound else row.target) or ""
		if not doctype or not path.strip() or (outbound and row.source_type not in ("Field", "Path")):
			continue
		error = doctype_path_error(doctype, path.strip())
		if error:
			errors.append(
				(
					row,
					_("Row {0}: {1} {2} does not exist: {3}.").format(
						row.idx, label, frappe.bold(path), error
					),
				)
			)
	return errors


def builder_input_message(mapping, row, builder) -> str:
	return _("Row {0}: {1} is not an input of {2}; use one of {3}.").format(
		row.idx, frappe.bold(row.target), _(mapping.document_builder), ", ".join(builder.inputs)
	)


def row_errors(mapping) -> dict[int, str]:
	"""{row idx: message} for every field row that is wrong on its own, all at once (saving stops at the
	first): a DocType field that does not exist, or a rule the engine cannot compile."""
	errors = {row.idx: message for row, message in field_path_errors(mapping)}
	for row, rule in zip(mapping.fields, field_rules(mapping), strict=True):
		if row.idx in errors:
			continue
		try:
			compile_mapping([rule], "")
		except MappingError as error:
			errors[row.idx] = _("Row {0}: {1}").format(row.idx, error.message)
	return errors


def validation_message(error: MappingError) -> str:
	if error.field:
		return _("Mapping row for {0}: {1}").format(frappe.bold(error.field), error.message)
	return error.message
