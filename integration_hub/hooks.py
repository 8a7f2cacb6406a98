app_name = "integration_hub"
app_title = "Integration Hub"
app_publisher = "Integration Hub Contributors"
app_description = (
	"Connectors, mappings and a durable sync log that make ERPNext the hub of a business's software"
)
app_email = "maintainers@integration-hub.invalid"
app_license = "mit"

required_apps = ["frappe/erpnext"]

before_install = "integration_hub.install.ensure_roles"
after_migrate = "integration_hub.install.ensure_roles"
before_uninstall = "integration_hub.install.before_uninstall"

after_request = ["integration_hub.api.webhook.answer_unparsable_json"]

integration_hub_health_changed = ["integration_hub.alerts.on_health_change"]

doctype_list_js = {
	"Connector": "public/js/connector_list.js",
	"Sync Log": "public/js/sync_log_list.js",
}

doc_events = {
	"*": {
		"after_insert": "integration_hub.outbound.dispatch.on_document_event",
		"on_update": "integration_hub.outbound.dispatch.on_document_event",
		"on_submit": "integration_hub.outbound.dispatch.on_document_event",
		"on_update_after_submit": "integration_hub.outbound.dispatch.on_document_event",
		"on_cancel": "integration_hub.outbound.dispatch.on_document_event",
		"on_trash": "integration_hub.outbound.dispatch.on_document_event",
	},
	"Stock Ledger Entry": {
		"on_submit": "integration_hub.outbound.stock.on_stock_ledger_entry",
	},
}

scheduler_events = {
	"daily_long": [
		"integration_hub.logs.trim_successful_bodies",
		"integration_hub.reconciliation.reconcile_yesterday",
	],
	"cron": {
		"* * * * *": [
			"integration_hub.outbound.outbox.sweep",
			"integration_hub.inbound.apply.sweep",
			"integration_hub.inbound.pull.schedule_pulls",
		],
		"*/5 * * * *": [
			"integration_hub.alerts.check",
		],
	},
}

ignore_links_on_delete = ["Sync Log", "Integration Binding", "Reconciliation Difference"]

default_log_clearing_doctypes = {"Sync Log": 30}
