"""The Integration Hub workspace charts: one grouped, index-only query on Sync Log each.

Frappe's own time-series charts group by the raw datetime (one result row per distinct timestamp), which
does not survive a million rows; these group by day in SQL over the (modified, status, direction, connector)
index and fill the periods in Python. The index is forced: on a small table the optimizer would rather walk
another index in group order, a plan that reads every row once the table is large.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta

import frappe
from frappe import _
from frappe.utils import formatdate, getdate, now_datetime
from frappe.utils.dateutils import get_dates_from_timegrain, get_from_date_from_timespan, get_period

# every series is always sent, in this order, so each keeps its colour (the charts' custom_options)
SERIES = {
	"status": ("Success", "Queued", "Running", "Failed", "Dead", "Skipped", "Cancelled"),
	"direction": ("Outbound", "Inbound"),
}
DEFAULT_TIMESPAN = "Last Week"
TOP_CONNECTORS = 10


def chart_request(chart_name=None, chart=None, filters=None, from_date=None, to_date=None, timespan=None):
	"""The chart document and its filters, after checking the user may read Sync Log."""
	frappe.has_permission("Sync Log", "read", throw=True)
	if chart_name:
		chart = frappe.get_doc("Dashboard Chart", chart_name)
	else:
		chart = frappe._dict(frappe.parse_json(chart) or {})
	filters = frappe._dict(frappe.parse_json(filters) or frappe.parse_json(chart.filters_json) or {})
	start, end = window(chart, from_date, to_date, timespan)
	return chart, filters, start, end


def window(chart, from_date=None, to_date=None, timespan=None) -> tuple[datetime, datetime]:
	"""[start, end) of the chart: a chosen date range, or the timespan up to now."""
	timespan = timespan or chart.get("timespan") or DEFAULT_TIMESPAN
	if timespan == "Select Date Range":
		start = midnight(from_date or chart.get("from_date"))
		return start, midnight(to_date or chart.get("to_date")) + timedelta(days=1)
	end = now_datetime()
	return midnight(get_from_date_from_timespan(end.date(), timespan)), end


def midnight(date) -> datetime:
	return datetime.combine(getdate(date), datetime.min.time())


def outcomes_over_time(split: str, start: datetime, end: datetime, timegrain: str = "Daily") -> dict:
	"""Sync Log rows finished (last changed) per period, one dataset per status or per direction."""
	if split not in SERIES:
		frappe.throw(_("Outcomes can be split by status or direction, not {0}.").format(frappe.bold(split)))
	rows = frappe.db.sql(
		f"""select date(modified) as day, `{split}` as series, count(*) as rows_count
		from `tabSync Log` force index (modified_status_direction_connector_index)
		where modified >= %(start)s and modified < %(end)s
		group by day, series""",
		{"start": start, "end": end},
		as_dict=True,
	)
	period_ends = [getdate(date) for date in get_dates_from_timegrain(start, end, timegrain)]
	counts: dict[str, list[int]] = {}
	for row in rows:
		position = min(bisect_left(period_ends, getdate(row.day)), len(period_ends) - 1)
		counts.setdefault(row.series, [0] * len(period_ends))[position] += row.rows_count
	return {
		"labels": [period_label(date, timegrain) for date in period_ends],
		"datasets": [
			{"name": _(series), "values": counts.get(series, [0] * len(period_ends))}
			for series in SERIES[split]
		],
	}


def outcomes_by_connector(start: datetime, end: datetime) -> dict:
	"""Rows per connector in the window, stacked by status; the busiest connectors first."""
	rows = connector_status_counts(start, end)
	totals: dict[str, int] = {}
	for row in rows:
		totals[row.connector or ""] = totals.get(row.connector or "", 0) + row.rows_count
	connectors = sorted(totals, key=lambda name: (-totals[name], name))[:TOP_CONNECTORS]
	by_status = {status: [0] * len(connectors) for status in SERIES["status"]}
	for row in rows:
		if (row.connector or "") in connectors:
			by_status[row.status][connectors.index(row.connector or "")] += row.rows_count
	return {
		"labels": [name or _("No connector") for name in connectors],
		"datasets": [{"name": _(status), "values": values} for status, values in by_status.items()],
	}


def connector_status_counts(start: datetime, end: datetime) -> list:
	"""(connector, status, rows_count) in the window. Grouping by the connector's name costs three times
	as much as by a 32-bit checksum of it (a temporary table keyed by a long string), so the checksum groups
	first; should two connectors ever share a checksum, the exact grouping runs instead."""
	quick = frappe.db.sql(
		"""select min(connector) as connector, max(connector) as other, status, count(*) as rows_count
		from `tabSync Log` force index (modified_status_direction_connector_index)
		where modified >= %(start)s and modified < %(end)s
		group by crc32(connector), status""",
		{"start": start, "end": end},
		as_dict=True,
	)
	if all(row.connector == row.other for row in quick):
		return quick
	return frappe.db.sql(
		"""select connector, status, count(*) as rows_count
		from `tabSync Log` force index (modified_status_direction_connector_index)
		where modified >= %(start)s and modified < %(end)s
		group by connector, status""",
		{"start": start, "end": end},
		as_dict=True,
	)


def period_label(date, timegrain: str) -> str:
	return formatdate(date) if timegrain in ("Daily", "Weekly") else get_period(date, timegrain)
