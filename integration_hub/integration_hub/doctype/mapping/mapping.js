// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Mapping", {
	refresh(frm) {
		if (frm.is_new()) {
			frm.add_custom_button(__("Load Template"), () => frm.trigger("load_template"));
			return;
		}
		if (frm.doc.direction === "Outbound") {
			frm.add_custom_button(__("Preview"), () => frm.trigger("preview"));
		}
		frm.add_custom_button(
			__("Sync Log"),
			() => frappe.set_route("List", "Sync Log", { mapping: frm.doc.name }),
			__("View")
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
