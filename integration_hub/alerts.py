"""Alerts: tell the people who run the integrations when something needs them, and when it has recovered.

An alert goes out when a connector turns Failing (its circuit breaker opens), when rows go Dead, when a
scheduled pull is overdue and when a reconciliation finds differences; a recovery notice follows when the
connector is healthy again (or, for an overdue pull, when the pull has succeeded). Each goes to every
recipient's notifications (Notification Log), as one e-mail through Frappe's Email Queue and, when the
settings name a chat connector, as a JSON post through the app's own outbox with its retries.

Each connector and kind has one Integration Alert record, and only that record keeps alerts from storming:
a raise within the quiet period after the last alert sent is counted on it and not sent. An alert is written
in the caller's transaction; the caller commits (the end of a Frappe job does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import frappe
from croniter import croniter
from frappe import _
from frappe.desk.doctype.notification_settings.notification_settings import is_notifications_enabled
from frappe.utils import cint, escape_html, format_datetime, get_datetime, get_url, now_datetime
from frappe.utils.user import get_users_with_role

from integration_hub.connectors import WAITING_STATUSES, secret_values
from integration_hub.engine.redact import redact_text
from integration_hub.install import INTEGRATION_MANAGER
from integration_hub.outbound.dispatch import queue_message

CONNECTOR_FAILING = "Connector Failing"
ROWS_DEAD = "Rows Dead"
PULL_OVERDUE = "Pull Overdue"
RECONCILIATION_DIFFERENCES = "Reconciliation Differences"
KINDS = (CONNECTOR_FAILING, ROWS_DEAD, PULL_OVERDUE, RECONCILIATION_DIFFERENCES)
CONNECTION_KINDS = (CONNECTOR_FAILING, ROWS_DEAD, RECONCILIATION_DIFFERENCES)
"""What a connector that is healthy again recovers; an overdue pull recovers when a pull has succeeded."""

SETTINGS = "Integration Hub Settings"
ALERT = "Integration Alert"
CHECK_INTERVAL_MINUTES = 5
QUIET_PERIOD_MINUTES = 60
DEAD_ROWS_THRESHOLD = 1
PULL_OVERDUE_MINUTES = 60
DEAD_LOOKBACK = timedelta(days=1)
"""Dead rows older than this are not counted, so the check reads a bounded range of the status index."""


@dataclass
class AlertSettings:
	enabled: bool
	quiet_period: timedelta
	dead_rows_threshold: int
	pull_overdue: timedelta
	chat_connector: str | None
	chat_path: str | None


def alert_settings() -> AlertSettings:
	settings = frappe.get_cached_doc(SETTINGS)
	return AlertSettings(
		enabled=bool(cint(settings.alerts_enabled)),
		quiet_period=timedelta(minutes=cint(settings.quiet_period_minutes) or QUIET_PERIOD_MINUTES),
		dead_rows_threshold=cint(settings.dead_rows_threshold) or DEAD_ROWS_THRESHOLD,
		pull_overdue=timedelta(minutes=cint(settings.pull_overdue_minutes) or PULL_OVERDUE_MINUTES),
		chat_connector=settings.chat_connector or None,
		chat_path=settings.chat_path or None,
	)


# --- the public API ------------------------------------------------------------------------------------------


def raise_alert(connector: str, kind: str, count: int, summary: str, route: str | None = None) -> bool:
	"""Tell the recipients about ``kind`` on ``connector``, covering ``count`` rows; ``route`` is the Desk
	address of what it is about (by default the connector's Sync Log).

	Returns True when the alert went out, False when it was held back: alerts are switched off, or an alert of
	this kind for this connector went out within the quiet period (the raise is counted on its record).
	"""
	if kind not in KINDS:
		frappe.throw(_("Unknown alert kind {0}; use one of {1}").format(kind, ", ".join(KINDS)))
	settings = alert_settings()
	if not settings.enabled:
		return False
	now = now_datetime()
	alert = locked_alert(connector, kind)
	if alert.status != "Open" or not alert.first_raised_at:
		alert.first_raised_at = now
	alert.update(
		{
			"status": "Open",
			"row_count": count,
			"summary": summary,
			"route": route or sync_log_route(connector),
			"last_raised_at": now,
		}
	)
	if alert.last_sent_at and get_datetime(alert.last_sent_at) > now - settings.quiet_period:
		alert.suppressed_count = cint(alert.suppressed_count) + 1
		alert.save(ignore_permissions=True)
		return False
	alert.last_sent_at = now
	alert.suppressed_count = 0
	alert.save(ignore_permissions=True)
	send(alert_message(alert), alert, settings)
	return True


def raise_recovery(connector: str, kinds: Iterable[str] | None = None) -> bool:
	"""Close the connector's open alerts (by default every kind but Pull Overdue) and send one recovery notice.

	Returns True when a notice went out. None goes out when no open alert was ever sent (raised only within a
	quiet period), so nobody hears of a recovery from something they were not told about.
	"""
	kinds = tuple(kinds or CONNECTION_KINDS)
	names = frappe.get_all(
		ALERT, filters={"connector": connector, "status": "Open", "kind": ("in", kinds)}, pluck="name"
	)
	if not names:
		return False
	now = now_datetime()
	closed = []
	for name in names:
		alert = frappe.get_doc(ALERT, name, for_update=True)
		if alert.status != "Open":
			continue
		if episode_was_sent(alert):
			closed.append(alert)
		alert.update({"status": "Recovered", "recovered_at": now})
		alert.save(ignore_permissions=True)
	settings = alert_settings()
	if not closed or not settings.enabled:
		return False
	send(recovery_message(connector, closed), closed[0], settings)
	return True


# --- detection -----------------------------------------------------------------------------------------------


def on_health_change(connector: str, previous: str | None, current: str) -> None:
	"""Called once the connector's new health is committed: Failing raises an alert, Healthy a recovery.

	A failure to alert is logged and never breaks the delivery or pull whose outcome moved the health.
	"""
	if current == previous or current not in ("Failing", "Healthy"):
		return
	try:
		if current == "Failing":
			alert_failing(connector)
		else:
			raise_recovery(connector)
		frappe.db.commit()
	except Exception:
		frappe.db.rollback()
		frappe.log_error(
			title="Integration Hub alert failed",
			message=redact_text(frappe.get_traceback(), secret_values(connector)),
			reference_doctype="Connector",
			reference_name=connector,
		)


def alert_failing(connector: str) -> bool:
	state = frappe.db.get_value(
		"Connector", connector, ["consecutive_failures", "paused_until", "last_error"], as_dict=True
	)
	waiting = frappe.db.count("Sync Log", {"connector": connector, "status": ("in", WAITING_STATUSES)})
	summary = _(
		"{0} calls in a row to {1} failed, so its circuit breaker holds deliveries and pulls back until {2}. "
		"{3} rows are waiting. Last error: {4}"
	).format(
		cint(state.consecutive_failures),
		connector,
		format_datetime(state.paused_until) if state.paused_until else _("the next probe"),
		waiting,
		redact_text(state.last_error or _("no reason recorded"), secret_values(connector)),
	)
	return raise_alert(connector, CONNECTOR_FAILING, waiting, summary, sync_log_route(connector))


def check() -> None:
	"""Every few minutes: connectors failing without an alert (a missed transition), rows gone Dead since the
	last alert, and overdue scheduled pulls. Each connector's alert is committed on its own."""
	settings = alert_settings()
	if not settings.enabled:
		return
	check_failing_connectors()
	check_dead_rows(settings)
	check_overdue_pulls(settings)


def check_failing_connectors() -> None:
	"""Failing connectors whose failure nobody was told about, and healthy ones whose alert is still open."""
	rows = frappe.db.sql(
		"""
		select connector.name, connector.health_status, alert.name as alert, alert.first_raised_at,
			alert.last_sent_at
		from `tabConnector` connector
		left join `tabIntegration Alert` alert
			on alert.connector = connector.name and alert.kind = %(kind)s and alert.status = 'Open'
		where connector.enabled = 1 and (connector.health_status = 'Failing' or alert.name is not null)
		""",
		{"kind": CONNECTOR_FAILING},
		as_dict=True,
	)
	for row in rows:
		if row.health_status == "Failing" and not (row.alert and episode_was_sent(row)):
			alert_failing(row.name)
		elif row.health_status == "Healthy" and row.alert:
			raise_recovery(row.name)
		frappe.db.commit()


def check_dead_rows(settings: AlertSettings) -> None:
	"""Connectors with at least the threshold of rows gone Dead since their last Rows Dead alert.

	Two ranges of the (status, direction, modified) index (one per direction), bounded by ``DEAD_LOOKBACK``:
	only rows gone Dead lately are read, however long the history."""
	counts = frappe.db.sql(
		"""
		select log.connector, count(*) as dead, max(log.modified) as latest
		from `tabSync Log` log force index (status_direction_modified_index)
		left join `tabIntegration Alert` alert on alert.connector = log.connector and alert.kind = %(kind)s
		where log.status = 'Dead' and log.direction in ('Outbound', 'Inbound') and log.modified > %(floor)s
			and (alert.last_sent_at is null or log.modified > alert.last_sent_at)
		group by log.connector
		""",
		{"kind": ROWS_DEAD, "floor": now_datetime() - DEAD_LOOKBACK},
		as_dict=True,
	)
	for row in counts:
		if row.connector and row.dead >= settings.dead_rows_threshold:
			alert_dead_rows(row.connector, row.dead)
			frappe.db.commit()


def alert_dead_rows(connector: str, count: int) -> bool:
	latest_error = frappe.db.get_value(
		"Sync Log", {"connector": connector, "status": "Dead"}, "error", order_by="modified desc"
	)
	summary = _(
		"{0} rows of {1} went Dead: they are not retried by themselves. Fix the cause, then Retry them from "
		"the Sync Log. Latest reason: {2}"
	).format(count, connector, redact_text(latest_error or _("none recorded"), secret_values(connector)))
	return raise_alert(connector, ROWS_DEAD, count, summary, sync_log_route(connector, status="Dead"))


def check_overdue_pulls(settings: AlertSettings) -> None:
	"""Scheduled pulls that have not succeeded ``pull_overdue`` after their schedule said they should run; the
	alerts of connectors whose pulls have all caught up are closed."""
	now = now_datetime()
	overdue: dict[str, list] = defaultdict(list)
	for mapping in scheduled_mappings():
		due_at = next_run_after(mapping.cron_expression, mapping.last_pull_success_at or mapping.creation)
		if due_at and now > due_at + settings.pull_overdue:
			overdue[mapping.connector].append(mapping)
	open_alerts = {
		alert.connector: alert
		for alert in frappe.get_all(
			ALERT,
			filters={"kind": PULL_OVERDUE, "status": "Open"},
			fields=["name", "connector", "first_raised_at", "last_sent_at"],
		)
	}
	for connector, mappings in overdue.items():
		alert = open_alerts.get(connector)
		if not (alert and episode_was_sent(alert)):
			alert_overdue_pulls(connector, mappings)
			frappe.db.commit()
	for connector in set(open_alerts) - set(overdue):
		raise_recovery(connector, [PULL_OVERDUE])
		frappe.db.commit()


def scheduled_mappings() -> list:
	"""Enabled scheduled inbound mappings of enabled connectors that an administrator has not paused."""
	return frappe.db.sql(
		"""
		select mapping.name, mapping.connector, mapping.cron_expression, mapping.last_pull_success_at,
			mapping.creation
		from `tabMapping` mapping
		join `tabConnector` connector on connector.name = mapping.connector
		where mapping.enabled = 1 and connector.enabled = 1 and mapping.direction = 'Inbound'
			and mapping.`trigger` = 'Schedule' and ifnull(connector.health_status, '') != 'Paused'
		""",
		as_dict=True,
	)


def next_run_after(cron_expression: str | None, since) -> datetime | None:
	if not cron_expression or not croniter.is_valid(cron_expression):
		return None
	return croniter(cron_expression, get_datetime(since)).get_next(datetime)


def alert_overdue_pulls(connector: str, mappings: list) -> bool:
	lines = [
		_("{0} (last success: {1})").format(
			mapping.name,
			format_datetime(mapping.last_pull_success_at) if mapping.last_pull_success_at else _("never"),
		)
		for mapping in mappings
	]
	errors = frappe.get_all(
		"Mapping",
		filters={"name": ("in", [mapping.name for mapping in mappings]), "last_pull_error": ("is", "set")},
		pluck="last_pull_error",
		limit=1,
	)
	summary = _("{0} scheduled pulls of {1} are overdue: {2}.").format(
		len(mappings), connector, "; ".join(lines)
	)
	if errors:
		summary += " " + _("Last pull error: {0}").format(redact_text(errors[0], secret_values(connector)))
	return raise_alert(
		connector, PULL_OVERDUE, len(mappings), summary, sync_log_route(connector, direction="Inbound")
	)


# --- records and recipients ----------------------------------------------------------------------------------


def locked_alert(connector: str, kind: str):
	"""The connector's alert record of ``kind``, locked for this transaction; created when it is the first.

	Two workers raising the same alert at once meet on the record's lock (or on its unique index when both
	create it): the second sees the first's ``last_sent_at`` and is held back by the quiet period.
	"""
	name = frappe.db.get_value(ALERT, {"connector": connector, "kind": kind}, "name", for_update=True)
	if name:
		return frappe.get_doc(ALERT, name)
	frappe.db.savepoint("integration_hub_alert")
	try:
		return frappe.get_doc(
			{"doctype": ALERT, "connector": connector, "kind": kind, "status": "Open"}
		).insert(ignore_permissions=True)
	except (frappe.DuplicateEntryError, frappe.UniqueValidationError):
		frappe.db.rollback(save_point="integration_hub_alert")
		name = frappe.db.get_value(ALERT, {"connector": connector, "kind": kind}, "name", for_update=True)
		return frappe.get_doc(ALERT, name)


def episode_was_sent(alert) -> bool:
	"""Whether the recipients were told of the alert's current episode (not only of an earlier one)."""
	return bool(
		alert.last_sent_at
		and alert.first_raised_at
		and get_datetime(alert.last_sent_at) >= get_datetime(alert.first_raised_at)
	)


def recipients() -> list[frappe._dict]:
	"""Enabled users named in the settings or holding one of its roles; the Integration Managers when it names
	neither. Each with ``name`` and ``email``."""
	settings = frappe.get_cached_doc(SETTINGS)
	roles = [row.role for row in settings.alert_roles]
	users = {row.user for row in settings.alert_users}
	if not roles and not users:
		roles = [INTEGRATION_MANAGER]
	for role in roles:
		users.update(get_users_with_role(role))
	users.discard("Guest")
	if not users:
		return []
	return frappe.get_all(
		"User",
		filters={"name": ("in", sorted(users)), "enabled": 1},
		fields=["name", "email"],
		order_by="name",
	)


def sync_log_route(connector: str, **filters: str) -> str:
	"""The Desk address of the connector's Sync Log rows, filtered."""
	return "/app/sync-log?" + urlencode({"connector": connector, **filters}, quote_via=quote)


# --- messages and sending ------------------------------------------------------------------------------------


@dataclass
class Message:
	subject: str
	lines: list[str]
	route: str
	status: str
	kinds: list[str]


def alert_message(alert) -> Message:
	covers = (
		_("It covers {0} scheduled pulls.").format(alert.row_count)
		if alert.kind == PULL_OVERDUE
		else _("It covers {0} rows.").format(alert.row_count)
	)
	return Message(
		subject=_("Integration Hub: {0} on {1}").format(_(alert.kind), alert.connector),
		lines=[alert.summary or "", covers],
		route=alert.route or sync_log_route(alert.connector),
		status="Open",
		kinds=[alert.kind],
	)


def recovery_message(connector: str, closed: list) -> Message:
	lines = [_("{0} is healthy again.").format(connector)]
	lines += [
		_("Recovered: {0}, raised {1}.").format(_(alert.kind), format_datetime(alert.first_raised_at))
		for alert in closed
	]
	return Message(
		subject=_("Integration Hub: {0} has recovered").format(connector),
		lines=lines,
		route=sync_log_route(connector),
		status="Recovered",
		kinds=[alert.kind for alert in closed],
	)


def send(message: Message, alert, settings: AlertSettings) -> None:
	"""Notification Log rows and one e-mail to the recipients, and the chat post when one is set up."""
	people = recipients()
	url = get_url(message.route)
	for person in people:
		if is_notifications_enabled(person.name):
			frappe.get_doc(
				{
					"doctype": "Notification Log",
					"for_user": person.name,
					"type": "Alert",
					"subject": escape_html(message.subject),
					"email_content": "<br>".join(escape_html(line) for line in message.lines),
					"document_type": ALERT,
					"document_name": alert.name,
					"link": message.route,
				}
			).insert(ignore_permissions=True)
	emails = [person.email for person in people if person.email]
	if emails:
		queue_email(emails, message, alert, url)
	if settings.chat_connector and settings.chat_path:
		queue_message(
			settings.chat_connector,
			settings.chat_path,
			chat_body(message, alert.connector, url),
			reference_doctype=ALERT,
			reference_name=alert.name,
		)


def queue_email(emails: list[str], message: Message, alert, url: str) -> None:
	"""One e-mail to all recipients through Frappe's Email Queue. A site without an outgoing Email Account
	still gets the notifications and the chat post; the missing account is logged."""
	try:
		frappe.sendmail(
			recipients=emails,
			subject=message.subject,
			message=email_body(message, url),
			reference_doctype=ALERT,
			reference_name=alert.name,
			delayed=True,
		)
	except frappe.OutgoingEmailError as error:
		frappe.log_error(
			title="Integration Hub alert not e-mailed",
			message=str(error),
			reference_doctype=ALERT,
			reference_name=alert.name,
		)


def email_body(message: Message, url: str) -> str:
	paragraphs = "".join(f"<p>{escape_html(line)}</p>" for line in message.lines)
	link = _("Open the Sync Log")
	return f'{paragraphs}<p><a href="{escape_html(url)}">{escape_html(link)}</a>: {escape_html(url)}</p>'


def chat_body(message: Message, connector: str, url: str) -> dict:
	"""A body chat webhooks take as it is (``text``), with the details for receivers that read them."""
	return {
		"text": "\n".join([message.subject, *message.lines, url]),
		"connector": connector,
		"status": message.status,
		"kinds": message.kinds,
		"link": url,
	}
