frappe.provide("frappe.dashboards.chart_sources");

frappe.dashboards.chart_sources["Sync Log Outcomes"] = {
	method: "integration_hub.integration_hub.dashboard_chart_source.sync_log_outcomes.sync_log_outcomes.get",
	filters: [
		{
			fieldname: "split_by",
			label: __("Split By"),
			fieldtype: "Select",
			options: [
				{ value: "status", label: __("Status") },
				{ value: "direction", label: __("Direction") },
			],
			default: "status",
		},
	],
};
