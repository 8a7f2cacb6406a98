// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Mapping", {
	onload_post_render(frm) {
		frm.trigger("suggest_fields");
	},

	direction(frm) {
		frm.trigger("suggest_fields");
	},

	source_doctype(frm) {
		frm.trigger("suggest_fields");
	},

	target_doctype(frm) {
		frm.trigger("suggest_fields");
	},

	validate(frm) {
		frm.trigger("check_rows");
	},

	// Source (outbound) or target (inbound) of a field row: the DocType's real fields, child-table rows as
	// items[].item_code, mandatory ones marked; free text stays allowed for paths and expressions.
	suggest_fields(frm) {
		const outbound = frm.doc.direction !== "Inbound";
		const doctype = outbound ? frm.doc.source_doctype : frm.doc.target_doctype;
		const grid = frm.fields_dict.fields.grid;
		["source", "target"].forEach((fieldname) => {
			grid.update_docfield_property(fieldname, "ignore_validation", 1);
			grid.update_docfield_property(fieldname, "options", []);
		});
		if (!doctype) {
			return;
		}
		integration_hub_field_paths(doctype).then((paths) => {
			grid.update_docfield_property(outbound ? "source" : "target", "options", paths);
			frm.ih_required_fields = paths.filter((path) => path.reqd).map((path) => path.value);
			frm.trigger("show_required");
		});
	},

	show_required(frm) {
		if (frm.doc.direction !== "Inbound" || !frm.ih_required_fields) {
			frm.set_df_property("fields", "description", "");
			return;
		}
		const mapped = new Set((frm.doc.fields || []).map((row) => (row.target || "").trim()));
		const missing = frm.ih_required_fields.filter((fieldname) => !mapped.has(fieldname));
		frm.set_df_property(
			"fields",
			"description",
			missing.length
				? __("{0} needs these fields, which no row fills (unless the DocType has a default): {1}", [
						__(frm.doc.target_doctype),
						missing.join(", "),
				  ])
				: ""
		);
	},

	check_rows(frm) {
		return frappe
			.xcall("integration_hub.api.mapping.check_rows", { doc: frm.doc })
			.then((errors) => integration_hub_show_row_errors(frm, errors || {}));
	},

	refresh(frm) {
		frm.trigger("show_required");
		if (frm.is_new()) {
			frm.add_custom_button(__("Load Template"), () => frm.trigger("load_template"));
			return;
		}
		if (frm.doc.direction === "Outbound") {
			frm.add_custom_button(__("Preview"), () => frm.trigger("preview"));
		} else {
			frm.add_custom_button(__("Preview"), () => frm.trigger("preview_inbound"));
		}
		if (frm.doc.direction === "Inbound" && frm.doc.trigger === "Schedule") {
			frm.trigger("add_pull_buttons");
		}
		frm.add_custom_button(
			__("Sync Log"),
			() => frappe.set_route("List", "Sync Log", { mapping: frm.doc.name }),
			__("View")
		);
		frm.add_custom_button(
			__("Reconciliations"),
			() => frappe.set_route("List", "Reconciliation", { mapping: frm.doc.name }),
			__("View")
		);
		if (frappe.user.has_role(["Integration Manager", "System Manager"])) {
			frm.add_custom_button(__("Reconcile…"), () => frm.trigger("reconcile"));
		}
	},

	reconcile(frm) {
		const yesterday = frappe.datetime.add_days(frappe.datetime.get_today(), -1);
		frappe.prompt(
			[
				{ fieldname: "from_date", fieldtype: "Date", label: __("From Date"), default: yesterday, reqd: 1 },
				{ fieldname: "to_date", fieldtype: "Date", label: __("To Date"), default: yesterday, reqd: 1 },
			],
			(values) =>
				frappe.call({
					method: "integration_hub.api.reconciliation.start",
					args: { mapping: frm.doc.name, ...values },
					freeze: true,
					callback: (r) => frappe.set_route("Form", "Reconciliation", r.message),
				}),
			__("Compare ERPNext with {0}", [frm.doc.connector]),
			__("Reconcile")
		);
	},

	preview(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Preview the request for a document"),
			fields: [
				{
					fieldname: "docname",
					fieldtype: "Link",
					label: __(frm.doc.source_doctype),
					options: frm.doc.source_doctype,
					reqd: 1,
				},
				{
					fieldname: "event",
					fieldtype: "Select",
					label: __("Event"),
					options: (frm.doc.events || []).map((row) => row.event),
					default: (frm.doc.events || [])[0]?.event,
				},
				{ fieldname: "result", fieldtype: "Code", label: __("Request"), options: "JSON", read_only: 1 },
			],
			primary_action_label: __("Preview"),
			primary_action(values) {
				frappe.call({
					method: "integration_hub.api.mapping.preview",
					args: { mapping: frm.doc.name, docname: values.docname, event: values.event },
					callback(r) {
						dialog.set_value("result", JSON.stringify(r.message, null, 1));
					},
				});
			},
		});
		dialog.show();
	},

	add_pull_buttons(frm) {
		if (!frappe.user.has_role(["Integration Manager", "System Manager"])) {
			return;
		}
		frm.add_custom_button(__("Pull Now"), () => {
			frappe.call({
				method: "integration_hub.api.mapping.pull_now",
				args: { mapping: frm.doc.name },
				callback() {
					frm.dashboard.show_progress(__("Pull"), 0, __("Waiting for a worker…"));
				},
			});
		});
		frm.add_custom_button(
			__("Reset Cursor"),
			() =>
				frappe.confirm(
					__("Forget where pulls stopped? The next run reads the remote list from its start; records already bound are updated or skipped, not duplicated."),
					() =>
						frappe.call({
							method: "integration_hub.api.mapping.reset_cursor",
							args: { mapping: frm.doc.name },
							callback: () => frm.reload_doc(),
						})
				),
			__("Actions")
		);
		if (!frm.pull_progress_bound) {
			frm.pull_progress_bound = true;
			frappe.realtime.on("integration_hub_pull_progress", (data) => {
				if (data.mapping !== frm.doc.name) {
					return;
				}
				const handled = data.created + data.updated + data.unchanged + data.failed;
				const percent = data.fetched ? Math.round((100 * handled) / data.fetched) : 0;
				frm.dashboard.show_progress(__("Pull"), data.done ? 100 : percent, data.summary);
				if (data.done) {
					frm.dashboard.hide_progress(__("Pull"));
					frappe.show_alert({
						message: data.error ? __("Pull failed: {0}", [data.error]) : __("Pull done: {0}", [data.summary]),
						indicator: data.error ? "red" : "green",
					});
					frm.reload_doc();
				}
			});
		}
	},

	preview_inbound(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Preview what records would become"),
			fields: [
				{
					fieldname: "sample",
					fieldtype: "Code",
					options: "JSON",
					label: __("Sample Record (optional)"),
					description: __("Paste a record or a list of records; leave empty to read the first page from the remote."),
				},
				{ fieldname: "result", fieldtype: "HTML" },
			],
			primary_action_label: __("Preview"),
			primary_action(values) {
				frappe.call({
					method: "integration_hub.api.mapping.preview_inbound",
					args: { mapping: frm.doc.name, sample: values.sample || null },
					freeze: true,
					callback(r) {
						const rows = (r.message || []).map((item) => {
							const head = item.action === "error"
								? `<span class="indicator-pill red">${__("Error")}</span> ${frappe.utils.escape_html(item.error)}`
								: `<span class="indicator-pill ${item.action === "create" ? "green" : "blue"}">${__(item.action === "create" ? "Create" : "Update")}</span> ${frappe.utils.escape_html(item.document || "")}`;
							const body = item.values ? `<pre>${frappe.utils.escape_html(JSON.stringify(item.values, null, 1))}</pre>` : "";
							return `<div class="mb-3"><b>${frappe.utils.escape_html(String(item.external_id || __("(no external id)")))}</b> ${head}${body}</div>`;
						});
						dialog.fields_dict.result.$wrapper.html(rows.join("") || __("The remote returned no records."));
					},
				});
			},
		});
		dialog.show();
	},

	load_template() {
		const describe = (template) =>
			template ? `<p class="text-muted">${frappe.utils.escape_html(template.description)}</p>` : "";
		frappe.call({
			method: "integration_hub.api.mapping.list_templates",
			callback(r) {
				const templates = r.message || [];
				let dialog = null;
				dialog = new frappe.ui.Dialog({
					title: __("Create a Mapping from a Template"),
					fields: [
						{
							fieldname: "template",
							fieldtype: "Select",
							label: __("Template"),
							options: templates.map((t) => ({ value: t.name, label: t.title })),
							default: templates.length ? templates[0].name : null,
							reqd: 1,
							change() {
								const chosen = templates.find((t) => t.name === this.get_value());
								if (dialog) {
									dialog.set_df_property("about", "options", describe(chosen));
								}
							},
						},
						{ fieldname: "about", fieldtype: "HTML", options: describe(templates[0]) },
						{ fieldname: "connector", fieldtype: "Link", label: __("Connector"), options: "Connector", reqd: 1 },
						{ fieldname: "mapping_name", fieldtype: "Data", label: __("Mapping Name") },
					],
					primary_action_label: __("Create"),
					primary_action(values) {
						frappe.call({
							method: "integration_hub.api.mapping.create_from_template",
							args: values,
							freeze: true,
							callback(res) {
								dialog.hide();
								frappe.set_route("Form", "Mapping", res.message);
							},
						});
					},
				});
				dialog.show();
			},
		});
	},
});

frappe.ui.form.on("Mapping Field", {
	source(frm) {
		frm.trigger("check_rows");
	},
	target(frm) {
		frm.trigger("check_rows");
		frm.trigger("show_required");
	},
	transform(frm) {
		frm.trigger("check_rows");
	},
	argument(frm) {
		frm.trigger("check_rows");
	},
	fields_remove(frm) {
		frm.trigger("check_rows");
		frm.trigger("show_required");
	},
});

function integration_hub_field_paths(doctype) {
	return frappe.model.with_doctype(doctype).then(() => {
		const meta = frappe.get_meta(doctype);
		const paths = [{ value: "name", label: "name (ID)" }];
		const describe = (df, value) => ({
			value,
			label: `${value} (${__(df.label || df.fieldname)})${df.reqd ? " *" : ""}`,
			reqd: df.reqd && !df.default,
		});
		meta.fields.forEach((df) => {
			if (frappe.model.table_fields.includes(df.fieldtype)) {
				(frappe.get_meta(df.options)?.fields || [])
					.filter((child) => !frappe.model.no_value_type.includes(child.fieldtype))
					.forEach((child) => paths.push({ ...describe(child, `${df.fieldname}[].${child.fieldname}`), reqd: false }));
			} else if (!frappe.model.no_value_type.includes(df.fieldtype)) {
				paths.push(describe(df, df.fieldname));
			}
		});
		return paths;
	});
}

// One message per invalid row, shown under that row in the grid and in the field's description.
function integration_hub_show_row_errors(frm, errors) {
	const grid = frm.fields_dict.fields.grid;
	grid.wrapper.find(".ih-row-error").remove();
	(grid.grid_rows || []).forEach((grid_row) => {
		const message = errors[String(grid_row.doc.idx)];
		grid_row.row.toggleClass("ih-invalid-row", Boolean(message));
		grid_row.row.css("background-color", message ? "var(--bg-red)" : "");
		if (message) {
			const text = new DOMParser().parseFromString(message, "text/html").body.textContent;
			$(`<div class="ih-row-error text-danger small" style="padding: 2px 12px;"></div>`)
				.text(text)
				.insertAfter(grid_row.row);
		}
	});
	frm.ih_row_errors = errors;
}
