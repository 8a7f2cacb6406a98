# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import json

import frappe
from croniter import croniter
from frappe import _
from frappe.model.document import Document

from integration_hub.engine.errors import ConfigurationError, MappingError
from integration_hub.engine.jsonpath import compile_path
from integration_hub.engine.links import parse_link_target
from integration_hub.engine.mapping import check_template, compile_condition, compile_mapping
from integration_hub.inbound.builders import builder_for
from integration_hub.mappings import (
	clear_outbound_index,
	field_path_errors,
	field_rules,
	unreadable_fields,
	validation_message,
)

SUBMIT_EVENTS = frozenset({"on_submit", "on_cancel", "on_update_after_submit"})


class Mapping(Document):
	def validate(self):
		self.validate_connector()
		if self.direction == "Outbound":
			self.validate_events()
			self.validate_source_access()
			self.validate_duplicate_mapping()
			self.validate_field_paths()
			self.validate_batching()
		else:
			self.validate_trigger()
			self.validate_target_access()
			self.validate_builder_target()
			self.validate_field_paths()
			self.validate_links()
			self.validate_match_fields()
			self.validate_request_arguments()
			self.validate_pagination()
		self.validate_rules()

	def on_update(self):
		clear_outbound_index()

	def on_trash(self):
		clear_outbound_index()

	def after_rename(self, old, new, merge=False):
		clear_outbound_index()

	def validate_connector(self):
		protocol = frappe.db.get_value("Connector", self.connector, "protocol")
		if not protocol:
			frappe.throw(_("Connector {0} does not exist.").format(frappe.bold(self.connector)))
		self.connector_protocol = protocol

	def validate_events(self):
		if not self.source_doctype:
			frappe.throw(_("An outbound mapping needs a Source DocType."))
		if not self.events:
			frappe.throw(_("Add at least one event that sends {0} documents.").format(_(self.source_doctype)))
		meta = frappe.get_meta(self.source_doctype)
		seen = set()
		for row in self.events:
			if row.event in seen:
				frappe.throw(_("Row {0}: event {1} is listed twice.").format(row.idx, frappe.bold(row.event)))
			seen.add(row.event)
			if row.event in SUBMIT_EVENTS and not meta.is_submittable:
				frappe.throw(
					_("Row {0}: {1} is not submittable, so it never raises {2}.").format(
						row.idx, _(self.source_doctype), frappe.bold(row.event)
					)
				)
			self.validate_operation(row)

	def validate_operation(self, row):
		if self.connector_protocol == "SOAP" and not row.soap_operation:
			frappe.throw(_("Row {0}: a SOAP connector needs the SOAP Operation to call.").format(row.idx))
		if self.connector_protocol == "REST":
			if not row.path and not (self.batch_size or 0) > 1:
				frappe.throw(
					_("Row {0}: give the Path to call for {1}.").format(row.idx, frappe.bold(row.event))
				)
			self.validate_jinja(row.path, _("Row {0} Path").format(row.idx))

	def validate_target_access(self):
		"""Inbound records are written with the mapping's rights, so whoever enables it must hold them."""
		if not self.enabled or frappe.session.user == "Administrator" or not self.target_doctype:
			return
		needed = ["create", "write"] + (["submit"] if self.submit_on_create else [])
		missing = [ptype for ptype in needed if not frappe.has_permission(self.target_doctype, ptype)]
		if missing:
			frappe.throw(
				_("You may not {0} {1}, so you cannot enable a mapping that writes it.").format(
					"/".join(missing), _(self.target_doctype)
				),
				frappe.PermissionError,
			)

	def validate_source_access(self):
		"""Whoever saves an enabled outbound mapping must be allowed to read what it sends.

		Administrator is exempt, as in Frappe's own permission-level checks.
		"""
		if not self.enabled or frappe.session.user == "Administrator":
			return
		if not frappe.has_permission(self.source_doctype, "read"):
			frappe.throw(
				_("You may not read {0}, so you cannot save a mapping that sends it.").format(
					_(self.source_doctype)
				),
				frappe.PermissionError,
			)
		hidden = unreadable_fields(self)
		if hidden:
			frappe.throw(
				_(
					"This mapping sends, or through a template or expression could send, fields you may not read: {0}."
				).format(", ".join(hidden[:10])),
				frappe.PermissionError,
			)

	def validate_duplicate_mapping(self):
		if not self.enabled:
			return
		mapping = frappe.qb.DocType("Mapping")
		event = frappe.qb.DocType("Mapping Event")
		clashes = (
			frappe.qb.from_(mapping)
			.join(event)
			.on(event.parent == mapping.name)
			.select(mapping.name, event.event)
			.where(
				(mapping.name != (self.name or ""))
				& (mapping.enabled == 1)
				& (mapping.direction == "Outbound")
				& (mapping.connector == self.connector)
				& (mapping.source_doctype == self.source_doctype)
				& (event.parenttype == "Mapping")
				& event.event.isin([row.event for row in self.events])
			)
		).run(as_dict=True)
		if clashes:
			clash = clashes[0]
			frappe.throw(
				_("Mapping {0} already sends {1} on {2} to connector {3}.").format(
					frappe.bold(clash.name),
					_(self.source_doctype),
					frappe.bold(clash.event),
					frappe.bold(self.connector),
				),
				title=_("Duplicate Mapping"),
			)

	def validate_builder_target(self):
		builder = builder_for(self)
		if builder is not None and self.target_doctype != builder.doctype:
			frappe.throw(
				_("{0} creates {1}; set the Target DocType to {1}.").format(
					_(self.document_builder), _(builder.doctype)
				)
			)

	def validate_field_paths(self):
		errors = field_path_errors(self)
		if errors:
			frappe.throw(errors[0][1])

	def validate_batching(self):
		if (self.batch_size or 0) > 1 and self.connector_protocol == "REST" and not self.batch_path:
			frappe.throw(_("A batch size above 1 needs the Batch Path that accepts many records at once."))
		if self.batch_results_path:
			self.validate_jmespath(self.batch_results_path, _("Batch Results Path"))

	def validate_trigger(self):
		if not self.target_doctype:
			frappe.throw(_("An inbound mapping needs a Target DocType."))
		if self.submit_on_create and not frappe.get_meta(self.target_doctype).is_submittable:
			frappe.throw(_("{0} is not submittable; clear Submit On Create.").format(_(self.target_doctype)))
		if self.trigger == "Schedule":
			if not self.cron_expression or not croniter.is_valid(self.cron_expression.strip()):
				frappe.throw(
					_("{0} is not a valid cron expression (five fields, e.g. */15 * * * *).").format(
						frappe.bold(self.cron_expression or "")
					)
				)
			if self.connector_protocol == "SOAP" and not self.soap_operation:
				frappe.throw(
					_("A scheduled pull from a SOAP connector needs the SOAP Operation that lists records.")
				)
			if self.connector_protocol == "REST" and not self.endpoint_path:
				frappe.throw(_("A scheduled pull needs the Endpoint Path to read records from."))
		self.validate_jmespath(self.external_id_path, _("External ID Path"))
		self.validate_jmespath(self.cancel_when, _("Cancel When"))
		if self.cancel_when and not frappe.get_meta(self.target_doctype).is_submittable:
			frappe.throw(
				_("{0} is not submittable, so Cancel When cannot apply.").format(_(self.target_doctype))
			)
		self.validate_jmespath(self.records_path, _("Records Path"))

	def validate_links(self):
		builder = builder_for(self)
		for row in self.get("links") or []:
			if builder is not None:
				self.validate_builder_link(row, builder)
				continue
			try:
				table, fieldname = parse_link_target(row.target)
			except MappingError as error:
				frappe.throw(_("Link row {0}: {1}").format(row.idx, error.message))
			meta = frappe.get_meta(self.target_doctype)
			if table:
				table_field = meta.get_field(table)
				if not table_field or table_field.fieldtype not in frappe.model.table_fields:
					frappe.throw(
						_("Link row {0}: {1} has no child table {2}.").format(
							row.idx, _(self.target_doctype), frappe.bold(table)
						)
					)
				meta = frappe.get_meta(table_field.options)
			df = meta.get_field(fieldname)
			if not df or df.fieldtype != "Link":
				frappe.throw(
					_("Link row {0}: {1} is not a Link field of {2}.").format(
						row.idx, frappe.bold(fieldname), _(meta.name)
					)
				)
			row.link_doctype = df.options
			if row.match_by == "Field":
				self.validate_match_column(row, df.options)
			self.validate_create_with(row)

	def validate_create_with(self, row):
		if not row.create_with:
			return
		other = frappe.db.get_value(
			"Mapping", row.create_with, ["direction", "connector", "target_doctype"], as_dict=True
		)
		if not other or other.direction != "Inbound" or other.connector != self.connector:
			frappe.throw(
				_("Link row {0}: Create With must be an inbound mapping of connector {1}.").format(
					row.idx, frappe.bold(self.connector)
				)
			)
		if other.target_doctype != row.link_doctype:
			frappe.throw(
				_("Link row {0}: mapping {1} creates {2}, not {3}.").format(
					row.idx, frappe.bold(row.create_with), _(other.target_doctype), _(row.link_doctype)
				)
			)
		if row.match_by != "Binding":
			frappe.throw(
				_(
					"Link row {0}: a record made by Create With is found again by its binding; set Match By to Binding."
				).format(row.idx)
			)

	def validate_builder_link(self, row, builder):
		row.link_doctype = builder.inputs.get(row.target.strip())
		if not row.link_doctype:
			frappe.throw(
				_("Link row {0}: {1} is not a linked input of {2}.").format(
					row.idx, frappe.bold(row.target), _(self.document_builder)
				)
			)
		if row.match_by == "Field":
			self.validate_match_column(row, row.link_doctype)

	def validate_match_column(self, row, doctype):
		if not row.match_field:
			frappe.throw(_("Link row {0}: give the field of {1} to match by.").format(row.idx, _(doctype)))
		if row.match_field != "name" and not frappe.get_meta(doctype).get_field(row.match_field):
			frappe.throw(
				_("Link row {0}: {1} has no field {2}.").format(
					row.idx, _(doctype), frappe.bold(row.match_field)
				)
			)

	def validate_match_fields(self):
		meta = frappe.get_meta(self.target_doctype)
		for fieldname in (part.strip() for part in (self.match_field or "").split(",")):
			if fieldname and not meta.get_field(fieldname) and fieldname != "name":
				frappe.throw(
					_("Match Field {0} is not a field of {1}.").format(
						frappe.bold(fieldname), _(self.target_doctype)
					)
				)

	def validate_request_arguments(self):
		if not self.request_arguments:
			return
		try:
			arguments = json.loads(self.request_arguments)
		except ValueError as error:
			frappe.throw(_("Request Arguments are not valid JSON: {0}").format(error))
		if not isinstance(arguments, dict):
			frappe.throw(_("Request Arguments must be a JSON object of names and values."))

	def validate_pagination(self):
		if self.trigger != "Schedule":
			return
		required = {
			"Cursor": ("next_cursor_path", _("Next Cursor Path")),
			"Next Link": ("next_link_path", _("Next Link Path")),
		}.get(self.pagination_style or "None")
		if required and not self.get(required[0]):
			frappe.throw(_("{0} pagination needs the {1}.").format(_(self.pagination_style), required[1]))
		for fieldname, label in (
			("next_cursor_path", _("Next Cursor Path")),
			("next_link_path", _("Next Link Path")),
			("total_path", _("Total Records Path")),
			("has_more_path", _("Has More Path")),
			("record_id_path", _("Record ID Path")),
			("cursor_field", _("Incremental Cursor Field")),
		):
			self.validate_jmespath(self.get(fieldname), label)

	def validate_rules(self):
		if not self.fields and not self.body_template:
			frappe.throw(_("Add field rows or a body template: the mapping must say what to send or write."))
		try:
			compile_mapping(field_rules(self), self.body_template or "")
			compile_condition(self.condition or "")
		except MappingError as error:
			frappe.throw(validation_message(error), title=_("Invalid Mapping"))
		self.validate_jinja(self.idempotency_key_template, _("Idempotency Key Template"))
		self.validate_jmespath(self.remote_id_path, _("Remote ID Path"))

	def validate_jinja(self, template, label):
		if not template:
			return
		try:
			check_template(template)
		except MappingError as error:
			frappe.throw(_("{0} is not a valid template: {1}").format(label, error.message))

	def validate_jmespath(self, expression, label):
		if not expression:
			return
		try:
			compile_path(expression, label)
		except ConfigurationError as error:
			frappe.throw(_("{0} is not a valid JMESPath expression: {1}").format(label, error.message))
