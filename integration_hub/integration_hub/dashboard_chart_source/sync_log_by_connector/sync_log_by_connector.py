"""Sync Log rows per connector in the chart's timespan, stacked by status."""

import frappe

from integration_hub.dashboards import chart_request, outcomes_by_connector


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
	_chart, _filters, start, end = chart_request(chart_name, chart, filters, from_date, to_date, timespan)
	return outcomes_by_connector(start, end)
