frappe.listview_settings["Connector"] = {
	add_fields: ["enabled", "health_status", "circuit_state"],
	get_indicator(doc) {
		if (!doc.enabled) {
			return [__("Disabled"), "gray", "enabled,=,0"];
		}
		const colors = { Healthy: "green", Degraded: "orange", Paused: "blue", Failing: "red" };
		const status = doc.health_status || "Unknown";
		return [__(status), colors[status] || "gray", "health_status,=," + status];
	},
};
