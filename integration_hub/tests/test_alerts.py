"""Alerts end to end: real invoices, the real outbox against a server on 127.0.0.1 that goes down and comes
back, and what the Integration Managers (and nobody else) find in their notifications and the Email Queue.

Time passes by moving the times the app keeps (circuit pause, next attempts, alert times) back, so the
deliveries in each simulated minute really go to the server and really fail or succeed."""

from __future__ import annotations

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from integration_hub.alerts import (
	CONNECTOR_FAILING,
	PULL_OVERDUE,
	RECONCILIATION_DIFFERENCES,
	ROWS_DEAD,
	check,
	raise_alert,
	raise_recovery,
)
from integration_hub.connectors import record_circuit_outcome
from integration_hub.inbound.pull import run_pull
from integration_hub.integration_hub.doctype.connector.test_connector import make_user
from integration_hub.mappings import clear_outbound_index
from integration_hub.outbound.outbox import deliver
from integration_hub.tests.test_outbound import accounting_responder, discard_delivery_jobs
from integration_hub.tests.utils import (
	RecordingServer,
	make_connector,
	make_mapping_from_template,
	make_sales_invoice,
)

MANAGERS = ("ih-alerts-manager-1@example.com", "ih-alerts-manager-2@example.com")
PLAIN_USER = "ih-alerts-plain@example.com"
ALERT = "Integration Alert"


def let_minutes_pass(minutes: int, connectors: list[str]) -> None:
	"""As if ``minutes`` had passed for these connectors: every time the app keeps for them moves back."""
	shift = {"connectors": connectors, "minutes": minutes}
	frappe.db.sql(
		"""update `tabConnector` set paused_until = paused_until - interval %(minutes)s minute,
			last_failure_at = last_failure_at - interval %(minutes)s minute,
			last_success_at = last_success_at - interval %(minutes)s minute
		where name in %(connectors)s and paused_until < '9999-01-01'""",
		shift,
	)
	frappe.db.sql(
		"""update `tabSync Log` set next_attempt_at = next_attempt_at - interval %(minutes)s minute,
			creation = creation - interval %(minutes)s minute, modified = modified - interval %(minutes)s minute
		where connector in %(connectors)s""",
		shift,
	)
	frappe.db.sql(
		"""update `tabIntegration Alert` set first_raised_at = first_raised_at - interval %(minutes)s minute,
			last_raised_at = last_raised_at - interval %(minutes)s minute,
			last_sent_at = last_sent_at - interval %(minutes)s minute,
			recovered_at = recovered_at - interval %(minutes)s minute
		where connector in %(connectors)s""",
		shift,
	)
	frappe.db.commit()


def outgoing_mail_account() -> str | None:
	"""A default outgoing Email Account for the Email Queue to name, when the site has none; its name, so the
	test can remove it again. Nothing is sent: tests never flush the queue."""
	if frappe.db.exists("Email Account", {"enable_outgoing": 1, "default_outgoing": 1}):
		return None
	return (
		frappe.get_doc(
			{
				"doctype": "Email Account",
				"email_account_name": "IH Alerts Mail",
				"email_id": "ih-alerts-mail@example.com",
				"smtp_server": "127.0.0.1",
				"enable_outgoing": 1,
				"default_outgoing": 1,
				"no_smtp_authentication": 1,
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


def notifications(user: str, connector: str) -> list[frappe._dict]:
	"""The user's Notification Log rows about the connector's alerts, oldest first."""
	alerts = frappe.get_all(ALERT, filters={"connector": connector}, pluck="name")
	if not alerts:
		return []
	return frappe.get_all(
		"Notification Log",
		filters={"for_user": user, "document_type": ALERT, "document_name": ("in", alerts)},
		fields=["subject", "email_content", "link", "type"],
		order_by="creation asc",
	)


def queued_emails(connector: str) -> list[frappe._dict]:
	"""The Email Queue rows about the connector's alerts, each with its recipients and message."""
	alerts = frappe.get_all(ALERT, filters={"connector": connector}, pluck="name")
	if not alerts:
		return []
	emails = frappe.get_all(
		"Email Queue",
		filters={"reference_doctype": ALERT, "reference_name": ("in", alerts)},
		fields=["name", "message", "status"],
		order_by="creation asc",
	)
	for email in emails:
		email.recipients = set(
			frappe.get_all("Email Queue Recipient", filters={"parent": email.name}, pluck="recipient")
		)
	return emails


class AlertTestCase(FrappeTestCase):
	"""Each test commits (the outbox acts only after commit) and makes its own connectors, users and settings."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		for manager in MANAGERS:
			make_user(manager, ["Integration Manager"])
		make_user(PLAIN_USER, ["Blogger"])
		cls.mail_account = outgoing_mail_account()
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		if cls.mail_account:
			frappe.delete_doc("Email Account", cls.mail_account, force=True, ignore_permissions=True)
			frappe.db.commit()
		super().tearDownClass()

	def setUp(self):
		self.servers: list[RecordingServer] = []
		self.mappings: list[str] = []
		self.save_settings()

	def tearDown(self):
		for server in self.servers:
			server.stop()
		frappe.db.rollback()
		for mapping in self.mappings:
			frappe.db.set_value("Mapping", mapping, "enabled", 0)
		self.save_settings()
		frappe.db.commit()
		clear_outbound_index()

	def save_settings(self, **values) -> None:
		"""The alert settings as shipped, changed by ``values``."""
		settings = frappe.get_single("Integration Hub Settings")
		settings.update(
			{
				"alerts_enabled": 1,
				"alert_roles": [],
				"alert_users": [],
				"quiet_period_minutes": 60,
				"dead_rows_threshold": 1,
				"pull_overdue_minutes": 60,
				"chat_connector": None,
				"chat_path": None,
				**values,
			}
		)
		settings.save(ignore_permissions=True)
		frappe.db.commit()

	def start_server(self, responder) -> RecordingServer:
		server = RecordingServer(responder=responder)
		self.servers.append(server)
		return server

	def invoice_connector(self, name: str, url: str, **values) -> str:
		connector = make_connector(name, url, **values)
		self.mappings.append(make_mapping_from_template("sales_invoice_to_accounting", connector))
		frappe.db.commit()
		discard_delivery_jobs(connector)
		return connector

	def assert_managers_only(self, connector: str, subjects: list[str]) -> None:
		"""Each manager has exactly these notifications about the connector, in order; the plain user none."""
		for manager in MANAGERS:
			got = notifications(manager, connector)
			self.assertEqual(len(got), len(subjects), (manager, [row.subject for row in got]))
			for row, subject in zip(got, subjects, strict=True):
				self.assertIn(subject, row.subject)
				self.assertEqual(row.type, "Alert")
		self.assertEqual(notifications(PLAIN_USER, connector), [])


class TestRemoteDown(AlertTestCase):
	def test_ten_minutes_down_under_steady_submits_one_alert_per_connector_then_one_recovery(self):
		answers = {"status": 503}

		def responder(request):
			if answers["status"] == 503:
				return 503, {}, {"error": "down for maintenance"}
			return accounting_responder(request)

		server = self.start_server(responder)
		settings = {"circuit_failure_threshold": 3, "circuit_cooldown_seconds": 60, "max_attempts": 100}
		connectors = [
			self.invoice_connector("IH Alerts Books", server.url, **settings),
			self.invoice_connector("IH Alerts Ledger", server.url, **settings),
		]
		invoices = []
		for minute in range(11):
			invoices += [make_sales_invoice() for _ in range(2)]
			frappe.db.commit()
			for connector in connectors:
				deliver(connector)
			if minute == 1:
				told = [len(notifications(MANAGERS[0], connector)) for connector in connectors]
				self.assertEqual(told, [1, 1], "the circuit opening itself did not alert")
			if minute % 5 == 4:
				check()
			let_minutes_pass(1, connectors)

		# per connector: two failures in the first minute, the third opens the circuit, then a probe a minute
		self.assertEqual(len(server.requests), 2 * (2 + 1 + 9), "the remote was not tried every minute")
		for connector in connectors:
			health = frappe.db.get_value("Connector", connector, "health_status")
			self.assertEqual(health, "Failing", connector)
			alerts = frappe.get_all(ALERT, filters={"connector": connector}, fields=["*"])
			self.assertEqual([(alert.kind, alert.status) for alert in alerts], [(CONNECTOR_FAILING, "Open")])
			self.assertGreaterEqual(alerts[0].row_count, 3)
			self.assert_managers_only(connector, [f"Connector Failing on {connector}"])
			note = notifications(MANAGERS[0], connector)[0]
			self.assertIn(f"It covers {alerts[0].row_count} rows", note.email_content)
			self.assertEqual(note.link, f"/app/sync-log?connector={connector.replace(' ', '%20')}")
			emails = queued_emails(connector)
			self.assertEqual(len(emails), 1, connector)
			self.assertTrue(set(MANAGERS) <= emails[0].recipients, emails[0].recipients)
			self.assertNotIn(PLAIN_USER, emails[0].recipients)
			self.assertIn("down for maintenance", emails[0].message)

		answers["status"] = 201
		for minute in range(6):
			invoices += [make_sales_invoice() for _ in range(2)]
			frappe.db.commit()
			for connector in connectors:
				deliver(connector)
			if minute == 0:
				told = [len(notifications(MANAGERS[0], connector)) for connector in connectors]
				self.assertEqual(told, [2, 2], "the first success did not send the recovery notice")
			if minute % 5 == 4:
				check()
			let_minutes_pass(1, connectors)

		for connector in connectors:
			self.assertEqual(frappe.db.get_value("Connector", connector, "health_status"), "Healthy")
			statuses = frappe.get_all(
				"Sync Log", filters={"connector": connector}, pluck="status", distinct=True
			)
			self.assertEqual(statuses, ["Success"], connector)
			self.assertEqual(
				frappe.db.count("Sync Log", {"connector": connector}), len(invoices), "a row per invoice"
			)
			self.assertEqual(frappe.db.get_value(ALERT, {"connector": connector}, "status"), "Recovered")
			self.assert_managers_only(
				connector, [f"Connector Failing on {connector}", f"{connector} has recovered"]
			)
			self.assertEqual(len(queued_emails(connector)), 2)


class TestQuietPeriod(AlertTestCase):
	def test_a_second_alert_of_a_kind_waits_for_the_quiet_period(self):
		connector = make_connector("IH Alerts Quiet", "http://127.0.0.1:9")
		frappe.db.commit()

		self.assertTrue(raise_alert(connector, RECONCILIATION_DIFFERENCES, 3, "3 invoices differ"))
		self.assertFalse(raise_alert(connector, RECONCILIATION_DIFFERENCES, 4, "4 invoices differ"))
		self.assertTrue(raise_alert(connector, ROWS_DEAD, 2, "2 rows went Dead"), "another kind is not held")
		frappe.db.commit()
		held = frappe.get_doc(ALERT, {"connector": connector, "kind": RECONCILIATION_DIFFERENCES})
		self.assertEqual((held.suppressed_count, held.row_count), (1, 4))

		let_minutes_pass(59, [connector])
		self.assertFalse(raise_alert(connector, RECONCILIATION_DIFFERENCES, 5, "5 invoices differ"))
		let_minutes_pass(2, [connector])
		self.assertTrue(raise_alert(connector, RECONCILIATION_DIFFERENCES, 6, "6 invoices differ"))
		frappe.db.commit()

		self.assert_managers_only(
			connector,
			[
				f"Reconciliation Differences on {connector}",
				f"Rows Dead on {connector}",
				f"Reconciliation Differences on {connector}",
			],
		)
		self.assertIn("It covers 6 rows", notifications(MANAGERS[1], connector)[-1].email_content)
		self.assertEqual(len(queued_emails(connector)), 3)

	def test_a_flapping_connector_is_told_once_and_a_failure_held_back_goes_out_after_the_quiet_period(self):
		connector = make_connector("IH Alerts Flapping", "http://127.0.0.1:9", circuit_failure_threshold=1)
		frappe.db.commit()

		for _ in range(3):
			record_circuit_outcome(connector, success=False, error="connection refused")
			self.assertEqual(frappe.db.get_value("Connector", connector, "health_status"), "Failing")
			let_minutes_pass(2, [connector])
			record_circuit_outcome(connector, success=True)
			self.assertEqual(frappe.db.get_value("Connector", connector, "health_status"), "Healthy")
		record_circuit_outcome(connector, success=False, error="connection refused")
		check()
		told = [f"Connector Failing on {connector}", f"{connector} has recovered"]
		self.assert_managers_only(connector, told)

		let_minutes_pass(61, [connector])
		check()
		check()
		self.assert_managers_only(connector, [*told, f"Connector Failing on {connector}"])
		alert = frappe.get_doc(ALERT, {"connector": connector, "kind": CONNECTOR_FAILING})
		self.assertEqual((alert.status, alert.suppressed_count), ("Open", 0))


class TestDeadRowsAndPulls(AlertTestCase):
	def test_rows_gone_dead_above_the_threshold_raise_one_alert_with_their_count(self):
		server = self.start_server(lambda request: (422, {}, {"error": "tax code T9 is unknown"}))
		connector = self.invoice_connector("IH Alerts Dead", server.url)
		for _ in range(3):
			make_sales_invoice()
		frappe.db.commit()
		deliver(connector)
		self.assertEqual(frappe.db.count("Sync Log", {"connector": connector, "status": "Dead"}), 3)

		self.save_settings(dead_rows_threshold=4)
		check()
		self.assertFalse(frappe.db.exists(ALERT, {"connector": connector, "kind": ROWS_DEAD}))

		self.save_settings(dead_rows_threshold=3)
		check()
		check()
		alert = frappe.get_doc(ALERT, {"connector": connector, "kind": ROWS_DEAD})
		self.assertEqual(alert.row_count, 3)
		self.assert_managers_only(connector, [f"Rows Dead on {connector}"])
		note = notifications(MANAGERS[0], connector)[0]
		self.assertIn("3 rows of IH Alerts Dead went Dead", note.email_content)
		self.assertIn("tax code T9 is unknown", note.email_content)
		self.assertEqual(note.link, "/app/sync-log?connector=IH%20Alerts%20Dead&status=Dead")

		make_sales_invoice()
		frappe.db.commit()
		deliver(connector)
		let_minutes_pass(61, [connector])
		check()
		self.assertEqual(
			len(notifications(MANAGERS[0], connector)), 1, "one new Dead row is below the threshold"
		)

	def test_a_scheduled_pull_that_has_not_succeeded_is_overdue_until_it_does(self):
		answers = {"status": 503}

		def responder(request):
			if answers["status"] == 503:
				return 503, {}, {"error": "CRM upgrade in progress"}
			return 200, {}, {"results": [], "next": None}

		server = self.start_server(responder)
		connector = make_connector("IH Alerts Pull", server.url)
		mapping = make_mapping_from_template(
			"remote_list_to_customer", connector, cron_expression="*/5 * * * *", enabled=1
		)
		self.mappings.append(mapping)
		frappe.db.commit()

		run_pull(mapping)
		self.assertEqual(frappe.db.get_value("Mapping", mapping, "last_pull_status"), "Failed")
		check()
		self.assertFalse(frappe.db.exists(ALERT, {"connector": connector}), "not overdue yet")

		frappe.db.set_value(
			"Mapping", mapping, "creation", add_to_date(now_datetime(), hours=-2), update_modified=False
		)
		frappe.db.commit()
		check()
		check()
		alert = frappe.get_doc(ALERT, {"connector": connector, "kind": PULL_OVERDUE})
		self.assertEqual((alert.status, alert.row_count), ("Open", 1))
		self.assert_managers_only(connector, [f"Pull Overdue on {connector}"])
		note = notifications(MANAGERS[0], connector)[0]
		self.assertIn(mapping, note.email_content)
		self.assertIn("CRM upgrade in progress", note.email_content)
		self.assertIn("It covers 1 scheduled pulls", note.email_content)

		answers["status"] = 200
		run_pull(mapping)
		self.assertTrue(frappe.db.get_value("Mapping", mapping, "last_pull_success_at"))
		check()
		check()
		self.assertEqual(frappe.db.get_value(ALERT, alert.name, "status"), "Recovered")
		self.assert_managers_only(connector, [f"Pull Overdue on {connector}", f"{connector} has recovered"])


class TestRecipientsAndChat(AlertTestCase):
	def test_people_named_in_the_settings_get_alerts_instead_of_the_managers(self):
		connector = make_connector("IH Alerts Named", "http://127.0.0.1:9")
		self.save_settings(alert_users=[{"user": PLAIN_USER}])

		self.assertTrue(raise_alert(connector, RECONCILIATION_DIFFERENCES, 1, "1 invoice differs"))
		frappe.db.commit()

		self.assertEqual(len(notifications(PLAIN_USER, connector)), 1)
		self.assertEqual(notifications(MANAGERS[0], connector), [])
		self.assertEqual(queued_emails(connector)[0].recipients, {PLAIN_USER})

	def test_alerts_are_posted_to_the_chat_webhook_through_the_outbox(self):
		chat = self.start_server(lambda request: (200, {}, "ok"))
		chat_connector = make_connector("IH Alerts Chat", chat.url)
		connector = make_connector("IH Alerts Chatty", "http://127.0.0.1:9")
		self.save_settings(chat_connector=chat_connector, chat_path="/hooks/alerts")
		discard_delivery_jobs(chat_connector)

		self.assertTrue(raise_alert(connector, RECONCILIATION_DIFFERENCES, 2, "2 invoices differ"))
		self.assertFalse(raise_recovery("IH Alerts Nobody"))
		frappe.db.commit()
		row = frappe.get_all("Sync Log", filters={"connector": chat_connector}, fields=["*"])
		self.assertEqual([(row.status, row.direction) for row in row], [("Queued", "Outbound")])

		deliver(chat_connector)

		self.assertEqual(len(chat.requests), 1)
		request = chat.requests[0]
		self.assertEqual((request.method, request.path), ("POST", "/hooks/alerts"))
		body = request.json()
		self.assertIn(f"Reconciliation Differences on {connector}", body["text"])
		self.assertIn("2 invoices differ", body["text"])
		self.assertEqual((body["connector"], body["status"]), (connector, "Open"))
		self.assertEqual(frappe.db.get_value("Sync Log", {"connector": chat_connector}, "status"), "Success")


class TestAlertSettings(AlertTestCase):
	def test_bad_thresholds_and_an_incomplete_chat_webhook_are_refused(self):
		connector = make_connector("IH Alerts Settings Chat", "http://127.0.0.1:9")
		for values, message in [
			({"quiet_period_minutes": 0}, "Quiet Period must be at least one minute"),
			({"dead_rows_threshold": 0}, "Alert When Dead Rows Reach must be at least 1"),
			({"pull_overdue_minutes": 2}, "Pull Overdue After must be at least 5 minutes"),
			({"chat_connector": connector, "chat_path": ""}, "Give the Chat Webhook Path"),
		]:
			with self.subTest(values=values):
				with self.assertRaisesRegex(frappe.ValidationError, message):
					self.save_settings(**values)
		self.save_settings(quiet_period_minutes=15, dead_rows_threshold=10, pull_overdue_minutes=30)
		self.assertEqual(frappe.db.get_single_value("Integration Hub Settings", "quiet_period_minutes"), 15)

	def test_unknown_kinds_are_refused(self):
		with self.assertRaisesRegex(frappe.ValidationError, "Unknown alert kind"):
			raise_alert("IH Alerts Nobody", "Something Odd", 1, "odd")
