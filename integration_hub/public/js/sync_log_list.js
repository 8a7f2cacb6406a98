frappe.listview_settings["Sync Log"] = {
	add_fields: ["status", "direction", "attempts"],
	get_indicator(doc) {
		const colors = {
			Queued: "blue",
			Running: "purple",
			Success: "green",
			Failed: "orange",
			Dead: "red",
			Skipped: "gray",
			Cancelled: "gray",
		};
		return [__(doc.status), colors[doc.status] || "gray", "status,=," + doc.status];
	},
	onload(listview) {
		const run = (method, label) => {
			const names = listview.get_checked_items(true);
			if (!names.length) {
				frappe.msgprint(__("Select the rows first."));
				return;
			}
			frappe.call({
				method,
				args: { names },
				freeze: true,
				callback(r) {
					frappe.show_alert({ message: label(r.message || {}), indicator: "green" });
					listview.clear_checked_items();
					listview.refresh();
				},
			});
		};
		listview.page.add_action_item(__("Retry"), () =>
			run("integration_hub.api.sync_log.retry", (m) => __("Rows queued again: {0}", [m.queued]))
		);
		listview.page.add_action_item(__("Cancel"), () =>
			run("integration_hub.api.sync_log.cancel", (m) => __("Rows cancelled: {0}", [m.cancelled]))
		);
	},
};
