# Copyright (c) 2026, Integration Hub Contributors and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from integration_hub.alerts import CHECK_INTERVAL_MINUTES


class IntegrationHubSettings(Document):
	def validate(self):
		self.validate_alert_thresholds()
		self.validate_chat_webhook()

	def validate_alert_thresholds(self):
		if cint(self.quiet_period_minutes) < 1:
			frappe.throw(
				_("Quiet Period must be at least one minute: without it every failure would send an alert")
			)
		if cint(self.dead_rows_threshold) < 1:
			frappe.throw(_("Alert When Dead Rows Reach must be at least 1"))
		if cint(self.pull_overdue_minutes) < CHECK_INTERVAL_MINUTES:
			frappe.throw(
				_(
					"Pull Overdue After must be at least {0} minutes, how often overdue pulls are checked"
				).format(CHECK_INTERVAL_MINUTES)
			)

	def validate_chat_webhook(self):
		if not self.chat_connector:
			return
		protocol = frappe.db.get_value("Connector", self.chat_connector, "protocol")
		if protocol != "REST":
			frappe.throw(
				_("The chat webhook is posted as JSON, so {0} must be a REST connector").format(
					self.chat_connector
				)
			)
		if not (self.chat_path or "").strip():
			frappe.throw(
				_("Give the Chat Webhook Path on {0} that alerts are posted to").format(self.chat_connector)
			)
