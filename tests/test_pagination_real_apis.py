"""Pagination against servers that answer the way real APIs do: Django REST Framework (and ZKBio Time, built on
it), Microsoft Graph, Salesforce and Stripe. Each emulation keeps the real body shape and end-of-list rules."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from conftest import RecordedRequest, Reply

from integration_hub.engine.errors import ConfigurationError, PermanentError
from integration_hub.engine.pagination import PaginationSpec, iter_pages, iter_records
from integration_hub.engine.rest import RestClient, RestConfig


def rows(count: int, start: int = 1) -> list[dict]:
	return [{"id": index, "name": f"Row {index}"} for index in range(start, start + count)]


def make_client(server, connector_key: str, base_path: str = "") -> RestClient:
	config = RestConfig(connector_key, server.base_url + base_path, allow_private_network=True)
	return RestClient(config)


class DrfList:
	"""DRF PageNumberPagination: ``page``/``page_size``, absolute ``next``/``previous`` links, a silent
	``max_page_size`` cap, and ``404 {"detail": "Invalid page."}`` past the last page (an empty list still
	answers page 1). ``records_key="data"`` gives the ZKBio Time variant of the same body."""

	def __init__(self, server, path: str, records: list[dict], records_key: str = "results") -> None:
		self.server = server
		self.path = path
		self.records = records
		self.records_key = records_key
		self.max_page_size = 1000
		server.route(path, self.answer)

	def link(self, request: RecordedRequest, page: int, size: int) -> str | None:
		if page < 1 or (page - 1) * size >= len(self.records):
			return None
		query = {key: values[0] for key, values in request.query.items()}
		return self.server.url(self.path) + "?" + urlencode({**query, "page": page, "page_size": size})

	def answer(self, request: RecordedRequest) -> Reply:
		page = int(request.arg("page", "1"))
		size = min(int(request.arg("page_size", "10")), self.max_page_size)
		start = (page - 1) * size
		if page < 1 or (page > 1 and start >= len(self.records)):
			return Reply.json({"detail": "Invalid page."}, status=404)
		return Reply.json(
			{
				"count": len(self.records),
				"next": self.link(request, page + 1, size),
				"previous": self.link(request, page - 1, size),
				self.records_key: self.records[start : start + size],
			}
		)

	def pages_requested(self) -> list[str | None]:
		return [request.arg("page") for request in self.server.received(self.path)]


DRF_PAGE = PaginationSpec(
	style="page", records_path="results", size_param="page_size", page_size=10, total_path="count"
)


def test_page_style_stops_at_a_short_page_without_asking_for_more(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(25))
	spec = PaginationSpec(style="page", records_path="results", size_param="page_size", page_size=10)
	pages = list(iter_pages(make_client(http_server, connector_key), "/api/customers/", spec))
	assert [len(page.records) for page in pages] == [10, 10, 5]
	assert drf.pages_requested() == ["1", "2", "3"]


def test_page_style_stops_when_the_total_is_reached(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(30))
	records = list(iter_records(make_client(http_server, connector_key), "/api/customers/", DRF_PAGE))
	assert [record["id"] for record in records] == list(range(1, 31))
	assert drf.pages_requested() == ["1", "2", "3"], "page 4 would only answer 404"


@pytest.mark.parametrize(
	("body_page", "spec_field", "path"),
	[
		(
			lambda page, last: {"items": rows(10, page * 10), "meta": {"pages": last}},
			"total_pages_path",
			"meta.pages",
		),
		(lambda page, last: {"items": rows(10, page * 10), "more": page < last}, "has_more_path", "more"),
	],
)
def test_page_style_stops_when_the_body_says_so(http_server, connector_key, body_page, spec_field, path):
	http_server.route("/list", lambda request: Reply.json(body_page(int(request.arg("page")), 3)))
	spec = PaginationSpec(style="page", records_path="items", page_size=10, **{spec_field: path})
	pages = list(iter_pages(make_client(http_server, connector_key), "/list", spec, max_pages=10))
	assert len(pages) == 3
	assert [request.arg("page") for request in http_server.received("/list")] == ["1", "2", "3"]
	assert pages[-1].next_cursor == "4"


def test_drf_invalid_page_past_the_end_is_the_end(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(20))
	spec = PaginationSpec(style="page", records_path="results", size_param="page_size", page_size=10)
	pages = list(iter_pages(make_client(http_server, connector_key), "/api/customers/", spec))
	assert [len(page.records) for page in pages] == [10, 10]
	assert drf.pages_requested() == ["1", "2", "3"], "an exact multiple needs the 404 to end"
	assert pages[-1].next_cursor == "3"


def test_resuming_at_a_page_that_no_longer_exists_yields_nothing(http_server, connector_key):
	DrfList(http_server, "/api/customers/", rows(20))
	client = make_client(http_server, connector_key)
	assert list(iter_pages(client, "/api/customers/", DRF_PAGE, start_cursor="3")) == []


def test_404_on_the_first_page_stays_an_error(http_server, connector_key):
	http_server.route("/api/typo/", Reply.json({"detail": "Not found."}, status=404))
	with pytest.raises(PermanentError, match="404") as caught:
		list(iter_pages(make_client(http_server, connector_key), "/api/typo/", DRF_PAGE))
	assert caught.value.status_code == 404


def test_zkbio_time_transactions_read_under_data(http_server, connector_key):
	punches = [
		{"id": n, "emp_code": f"E{n % 4}", "punch_time": f"2024-05-01 09:{n:02d}:00"} for n in range(1, 13)
	]
	zk = DrfList(http_server, "/iclock/api/transactions/", punches, records_key="data")
	spec = PaginationSpec(
		style="page", records_path="data", size_param="page_size", page_size=5, total_path="count"
	)
	records = list(iter_records(make_client(http_server, connector_key), "/iclock/api/transactions/", spec))
	assert [record["id"] for record in records] == list(range(1, 13))
	assert zk.pages_requested() == ["1", "2", "3"]


def test_a_server_capping_the_page_size_is_reported_not_skipped(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(250))
	drf.max_page_size = 100
	spec = PaginationSpec(
		style="page", records_path="results", size_param="page_size", page_size=500, total_path="count"
	)
	with pytest.raises(ConfigurationError, match=r"100 records.*page_size 500"):
		list(iter_pages(make_client(http_server, connector_key), "/api/customers/", spec))
