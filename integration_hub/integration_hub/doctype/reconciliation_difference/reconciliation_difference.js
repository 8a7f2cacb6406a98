// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

const IH_RECONCILE = "integration_hub.api.reconciliation.";

function integration_hub_fix(frm, method, args, message) {
	frappe.call({
		method: IH_RECONCILE + method,
		args,
		freeze: true,
		callback() {
			frappe.show_alert({ message, indicator: "green" });
			frm.reload_doc();
		},
	});
}

function integration_hub_accept(names, done) {
	frappe.prompt(
		[{ fieldname: "reason", fieldtype: "Small Text", label: __("Why is this difference right?"), reqd: 1 }],
		(values) =>
			frappe.call({
				method: IH_RECONCILE + "accept",
				args: { names, reason: values.reason },
				freeze: true,
				callback: done,
			}),
		__("Accept the Difference"),
		__("Accept")
	);
}

frappe.ui.form.on("Reconciliation Difference", {
	refresh(frm) {
		frm.trigger("show_comparison");
		if (frm.doc.resolution !== "Open" || !frappe.user.has_role(["Integration Manager", "System Manager"])) {
			return;
		}
		const kind = frm.doc.difference_class;
		const names = [frm.doc.name];
		if (kind === "Missing at Remote" || (kind === "Status Differs" && frm.doc.erpnext_status === __("Cancelled"))) {
			frm.add_custom_button(__("Re-send"), () =>
				integration_hub_fix(frm, "resend", { names }, __("Queued in the outbox"))
			);
		}
		if (["Not Imported", "Dead in Sync Log", "Amount Differs"].includes(kind) && frm.doc.remote_record) {
			frm.add_custom_button(__("Re-pull"), () =>
				integration_hub_fix(frm, "repull", { names }, __("Brought in again"))
			);
		}
		if (kind === "Unknown at Remote") {
			frm.add_custom_button(__("Adopt"), () =>
				frappe.prompt(
					[
						{
							fieldname: "document",
							fieldtype: "Link",
							options: frm.doc.reference_doctype,
							label: __(frm.doc.reference_doctype),
							default: frm.doc.suggested_name,
							reqd: 1,
						},
					],
					(values) => integration_hub_fix(frm, "adopt", { name: frm.doc.name, document: values.document }, __("Bound")),
					__("Bind the remote record to")
				)
			);
		}
		if (kind === "Duplicate at Remote") {
			frm.add_custom_button(__("Void at Remote"), () =>
				frappe.confirm(__("Void the remote copy {0} through the outbox? The copy the document is bound to stays.", [frm.doc.remote_id]), () =>
					integration_hub_fix(frm, "void_at_remote", { names }, __("Queued in the outbox"))
				)
			);
		}
		frm.add_custom_button(__("Accept…"), () => integration_hub_accept(names, () => frm.reload_doc()));
	},

	show_comparison(frm) {
		const wrapper = frm.fields_dict.comparison_html.$wrapper;
		frappe
			.xcall(IH_RECONCILE + "compare", { name: frm.doc.name })
			.then((rows) => {
				const escape = (value) =>
					value === null || value === undefined ? '<span class="text-muted">—</span>' : frappe.utils.escape_html(String(value));
				const body = (rows || [])
					.map(
						(row) =>
							`<tr class="${row.differs ? "text-danger" : ""}"><td>${escape(row.field)}</td><td>${escape(row.erpnext)}</td><td>${escape(row.remote)}</td><td>${row.differs ? "≠" : ""}</td></tr>`
					)
					.join("");
				wrapper.html(
					`<table class="table table-bordered table-sm"><thead><tr><th>${__("Field")}</th><th>${__("ERPNext")}</th><th>${__("Remote")}</th><th></th></tr></thead><tbody>${body}</tbody></table>`
				);
			})
			.catch(() => wrapper.html(`<p class="text-muted">${__("No side-by-side view for this record.")}</p>`));
	},
});
