// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Sync Log", {
	refresh(frm) {
		frm.disable_save();
		const act = (method, label) =>
			frappe.call({
				method,
				args: { names: [frm.doc.name] },
				freeze: true,
				callback() {
					frappe.show_alert({ message: label, indicator: "green" });
					frm.reload_doc();
				},
			});
		if (["Failed", "Dead", "Skipped", "Cancelled"].includes(frm.doc.status) && frm.doc.direction === "Outbound") {
			frm.add_custom_button(__("Retry"), () => act("integration_hub.api.sync_log.retry", __("Queued again")));
		}
		if (["Queued", "Failed"].includes(frm.doc.status)) {
			frm.add_custom_button(__("Cancel"), () => act("integration_hub.api.sync_log.cancel", __("Cancelled")));
		}
		if (frm.doc.reference_doctype && frm.doc.reference_name) {
			frm.add_custom_button(__("Open {0}", [__(frm.doc.reference_doctype)]), () =>
				frappe.set_route("Form", frm.doc.reference_doctype, frm.doc.reference_name)
			);
		}
	},
});
