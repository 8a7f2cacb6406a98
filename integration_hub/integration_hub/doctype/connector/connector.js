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
		frappe
			.xcall("integration_hub.api.connector.connector_health", { connector: frm.doc.name })
			.then((health) => {
				frm.page.set_indicator(__(health.indicator), health.color);
				frm.dashboard.clear_headline();
				frm.dashboard.set_headline(integration_hub_health_html(health), health.color);
				frm.$wrapper
					.find(".ih-copy-webhook")
					.on("click", () => frappe.utils.copy_to_clipboard(health.webhook_url));
				frm.$wrapper
					.find(".ih-waiting-rows")
					.on("click", () =>
						frappe.set_route("List", "Sync Log", {
							connector: frm.doc.name,
							status: ["in", ["Queued", "Running", "Failed"]],
						})
					);
				if (health.can_manage) {
					frm.trigger("add_manager_buttons");
				}
			});
	},

	add_manager_buttons(frm) {
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
		const paused = frm.doc.circuit_state !== "Closed" || frm.doc.health_status === "Paused";
		const action = paused ? "resume_connector" : "pause_connector";
		frm.add_custom_button(paused ? __("Resume") : __("Pause"), () =>
			frappe.call({
				method: `integration_hub.api.connector.${action}`,
				args: { connector: frm.doc.name },
				freeze: true,
				callback() {
					frappe.show_alert({
						message: paused ? __("Deliveries resumed") : __("Deliveries paused"),
						indicator: paused ? "green" : "blue",
					});
					frm.reload_doc();
				},
			})
		);
	},
});

function integration_hub_health_html(health) {
	const esc = frappe.utils.escape_html;
	const when = (value) => (value ? frappe.datetime.str_to_user(value) : __("never"));
	const lines = [
		`<b>${esc(__(health.indicator))}</b>: ${esc(health.reason)}`,
		`${__("Last success")}: ${esc(when(health.last_success_at))} &middot; ${__("Last failure")}: ${esc(
			when(health.last_failure_at)
		)} &middot; ${__("Circuit")}: ${esc(__(health.circuit_state))}`,
		`<a class="ih-waiting-rows">${esc(__("Rows waiting: {0}", [health.waiting]))}</a> &middot; ${esc(
			__("Dead rows: {0}", [health.dead])
		)}`,
	];
	if (health.webhook_url) {
		lines.push(
			`${__("Webhook URL")}: <code class="ih-webhook-url">${esc(health.webhook_url)}</code>
			<button class="btn btn-xs btn-default ih-copy-webhook">${__("Copy")}</button>`
		);
	}
	return `<div class="ih-connector-health">${lines.join("<br>")}</div>`;
}
