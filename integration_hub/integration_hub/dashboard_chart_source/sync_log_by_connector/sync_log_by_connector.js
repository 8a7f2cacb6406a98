frappe.provide("frappe.dashboards.chart_sources");

frappe.dashboards.chart_sources["Sync Log by Connector"] = {
	method: "integration_hub.integration_hub.dashboard_chart_source.sync_log_by_connector.sync_log_by_connector.get",
	filters: [],
};
