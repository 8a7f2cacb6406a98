"""Sync Log outcomes over time, split by status or by direction (the chart's ``split_by`` filter)."""

import frappe

from integration_hub.dashboards import chart_request, outcomes_over_time


@frappe.whitelist()
def get(
	chart_name=None,
	chart=None,
	no_cache=None,
	filters=None,
	from_date=None,
	to_date=None,
	timespan=None,
	time_interval=None,
	heatmap_year=None,
	refresh=None,
):
	chart, filters, start, end = chart_request(chart_name, chart, filters, from_date, to_date, timespan)
	return outcomes_over_time(
		filters.split_by or "status", start, end, time_interval or chart.time_interval or "Daily"
	)
