// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Connector", {
	onload(frm) {
		frappe.call("frappe.core.doctype.user.user.get_timezones").then((r) => {
			frm.set_df_property("time_zone", "options", (r.message && r.message.timezones) || []);
		});
	},

	refresh(frm) {
		if (frm.is_new()) {
			return;
		}
		frm.trigger("show_health");
		frm.add_custom_button(__("Test Connection"), () => {
			frappe.call({
				method: "integration_hub.api.connector.test_connection",
				args: { connector: frm.doc.name },
				freeze: true,
				freeze_message: __("Testing connection..."),
				callback(r) {
					const result = r.message || {};
					frappe.msgprint({
						title: result.ok ? __("Connection works") : __("Connection failed"),
						indicator: result.ok ? "green" : "red",
						message: frappe.utils.escape_html(result.message || ""),
					});
					frm.reload_doc();
				},
			});
		});
		frm.add_custom_button(
			__("Sync Log"),
			() => frappe.set_route("List", "Sync Log", { connector: frm.doc.name }),
			__("View")
		);
		frm.add_custom_button(
			__("Mappings"),
			() => frappe.set_route("List", "Mapping", { connector: frm.doc.name }),
			__("View")
		);
	},

	show_health(frm) {
		const colors = { Healthy: "green", Degraded: "orange", Paused: "orange", Failing: "red" };
		const status = frm.doc.health_status || "Unknown";
		frm.page.set_indicator(__(status), colors[status] || "gray");
		if (frm.doc.circuit_state === "Open" && frm.doc.paused_until) {
			frm.dashboard.set_headline(
				__("Deliveries are paused until {0} after repeated failures: {1}", [
					frappe.datetime.str_to_user(frm.doc.paused_until),
					frappe.utils.escape_html(frm.doc.last_error || ""),
				]),
				"orange"
			);
		}
	},
});
