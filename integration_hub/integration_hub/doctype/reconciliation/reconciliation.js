// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Reconciliation", {
	refresh(frm) {
		frm.disable_save();
		if (frm.doc.status === "Queued" || frm.doc.status === "Running") {
			frm.dashboard.show_progress(__("Reconciliation"), 10, __("Reading both sides…"));
		}
		if (frm.doc.status === "Completed") {
			frm.dashboard.set_headline(
				frm.doc.difference_count
					? __("{0} open differences, {1} matched, {2} accepted earlier.", [
							frm.doc.difference_count,
							frm.doc.matched_count,
							frm.doc.accepted_count,
					  ])
					: __("Both sides agree: {0} matched.", [frm.doc.matched_count]),
				frm.doc.difference_count ? "orange" : "green"
			);
			frm.add_custom_button(__("Differences"), () =>
				frappe.set_route("List", "Reconciliation Difference", { reconciliation: frm.doc.name })
			);
			frm.add_custom_button(__("Report"), () =>
				frappe.set_route("List", "Reconciliation Difference", "Report", {
					reconciliation: frm.doc.name,
				})
			);
		}
		if (!frm.reconcile_progress_bound) {
			frm.reconcile_progress_bound = true;
			frappe.realtime.on("integration_hub_reconcile_progress", (data) => {
				if (data.reconciliation !== frm.doc.name) {
					return;
				}
				if (data.done) {
					frm.dashboard.hide_progress(__("Reconciliation"));
					frm.reload_doc();
					return;
				}
				frm.dashboard.show_progress(
					__("Reconciliation"),
					50,
					__("Remote records read: {0}", [data.fetched || 0])
				);
			});
		}
	},
});
