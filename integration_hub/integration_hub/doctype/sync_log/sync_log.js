// Copyright (c) 2026, Integration Hub Contributors and contributors
// For license information, please see license.txt

frappe.ui.form.on("Sync Log", {
	refresh(frm) {
		frm.disable_save();
		frm.trigger("add_actions");
		frm.trigger("show_delivery");
		frm.trigger("show_bodies");
	},

	add_actions(frm) {
		if (!frappe.model.can_write("Sync Log")) {
			return;
		}
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
		if (["Failed", "Dead", "Skipped", "Cancelled"].includes(frm.doc.status)) {
			frm.add_custom_button(__("Retry"), () => act("integration_hub.api.sync_log.retry", __("Queued again")));
		}
		if (["Queued", "Failed"].includes(frm.doc.status)) {
			frm.add_custom_button(__("Cancel"), () => act("integration_hub.api.sync_log.cancel", __("Cancelled")));
		}
	},

	show_delivery(frm) {
		const esc = frappe.utils.escape_html;
		const parts = [__("Attempts: {0}", [frm.doc.attempts || 0])];
		if (["Queued", "Failed"].includes(frm.doc.status) && frm.doc.next_attempt_at) {
			parts.push(__("Next attempt: {0}", [frappe.datetime.str_to_user(frm.doc.next_attempt_at)]));
		}
		if (frm.doc.reference_doctype && frm.doc.reference_name) {
			const route = `/app/${frappe.router.slug(frm.doc.reference_doctype)}/${encodeURIComponent(frm.doc.reference_name)}`;
			parts.push(
				`${esc(__(frm.doc.reference_doctype))}: <a class="ih-document-link" href="${route}">${esc(frm.doc.reference_name)}</a>`
			);
		}
		if (frm.doc.external_id) {
			const bindings = `/app/integration-binding?connector=${encodeURIComponent(frm.doc.connector || "")}&external_id=${encodeURIComponent(frm.doc.external_id)}`;
			parts.push(`${__("Remote ID")}: <a class="ih-remote-link" href="${bindings}">${esc(frm.doc.external_id)}</a>`);
		}
		const colors = { Success: "green", Failed: "orange", Dead: "red", Queued: "blue", Running: "purple" };
		const error = frm.doc.error ? `<br><b>${__("Reason")}</b>: ${esc(frm.doc.error)}` : "";
		frm.dashboard.set_headline(`${parts.join(" &middot; ")}${error}`, colors[frm.doc.status] || "gray");
	},

	show_bodies(frm) {
		if (!frm.doc.request && !frm.doc.response && !frm.doc.payload) {
			return;
		}
		frappe
			.xcall("integration_hub.api.sync_log.readable_bodies", { name: frm.doc.name })
			.then((bodies) => {
				const esc = frappe.utils.escape_html;
				const labels = { request: __("Request (redacted)"), response: __("Response"), payload: __("Payload") };
				const html = ["request", "response", "payload"]
					.filter((field) => bodies[field] && bodies[field].text)
					.map(
						(field) => `<div class="ih-body ih-body-${field}">
							<div class="text-muted small">${labels[field]} <span class="badge">${esc(bodies[field].format.toUpperCase())}</span></div>
							<pre style="max-height: 400px; overflow: auto; white-space: pre-wrap;">${esc(bodies[field].text)}</pre>
						</div>`
					)
					.join("");
				if (frm.ih_bodies && $.contains(document, frm.ih_bodies[0])) {
					frm.ih_bodies.html(html);
				} else {
					frm.ih_bodies = frm.dashboard.add_section(html, __("Request and Response"));
				}
				frm.dashboard.show();
			});
	},
});
