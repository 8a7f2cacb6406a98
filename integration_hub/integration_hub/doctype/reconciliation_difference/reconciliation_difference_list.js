// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.listview_settings["Reconciliation Difference"] = {
	add_fields: ["difference_class", "resolution"],
	get_indicator(doc) {
		if (doc.resolution !== "Open") {
			return [__(doc.resolution), "green", "resolution,=," + doc.resolution];
		}
		return [__(doc.difference_class), "orange", "difference_class,=," + doc.difference_class];
	},
	onload(listview) {
		if (!frappe.user.has_role(["Integration Manager", "System Manager"])) {
			return;
		}
		const run = (method, label) => {
			const names = listview.get_checked_items(true);
			if (!names.length) {
				frappe.msgprint(__("Select the differences first."));
				return;
			}
			frappe.call({
				method: "integration_hub.api.reconciliation." + method,
				args: { names },
				freeze: true,
				callback(r) {
					frappe.show_alert({ message: label(r.message || {}), indicator: "green" });
					listview.clear_checked_items();
					listview.refresh();
				},
			});
		};
		listview.page.add_action_item(__("Re-send"), () =>
			run("resend", (m) => __("Queued in the outbox: {0}", [m.resent]))
		);
		listview.page.add_action_item(__("Re-pull"), () =>
			run("repull", (m) => __("Brought in again: {0}", [m.repulled]))
		);
		listview.page.add_action_item(__("Void at Remote"), () =>
			run("void_at_remote", (m) => __("Queued in the outbox: {0}", [m.voided]))
		);
		listview.page.add_action_item(__("Accept…"), () => {
			const names = listview.get_checked_items(true);
			if (!names.length) {
				frappe.msgprint(__("Select the differences first."));
				return;
			}
			frappe.prompt(
				[{ fieldname: "reason", fieldtype: "Small Text", label: __("Why are these differences right?"), reqd: 1 }],
				(values) =>
					frappe.call({
						method: "integration_hub.api.reconciliation.accept",
						args: { names, reason: values.reason },
						freeze: true,
						callback() {
							listview.clear_checked_items();
							listview.refresh();
						},
					}),
				__("Accept the Differences"),
				__("Accept")
			);
		});
	},
};
