"""Pagination against servers that answer the way real APIs do: Django REST Framework (and ZKBio Time,
built on it), Microsoft Graph, Salesforce and Stripe. Each emulation keeps the real body shape and
end-of-list rules."""

from __future__ import annotations

import pytest
from conftest import RecordedRequest, Reply
from fake_apis import DrfList, StripeList, rows

from integration_hub.engine.errors import ConfigurationError, PermanentError
from integration_hub.engine.pagination import PaginationSpec, iter_pages, iter_records
from integration_hub.engine.rest import RestClient, RestConfig


def make_client(server, connector_key: str, base_path: str = "") -> RestClient:
	config = RestConfig(connector_key, server.base_url + base_path, allow_private_network=True)
	return RestClient(config)


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


# next_link: DRF "next", Microsoft Graph "@odata.nextLink", Salesforce "nextRecordsUrl"

DRF_NEXT = PaginationSpec(style="next_link", records_path="results", size_param="page_size", page_size=10)


def test_next_link_follows_drf_next_and_keeps_the_filters(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(25))
	client = make_client(http_server, connector_key)
	pages = list(iter_pages(client, "/api/customers/", DRF_NEXT, params={"status": "open"}))
	assert [len(page.records) for page in pages] == [10, 10, 5]
	assert drf.pages_requested() == [None, "2", "3"]
	assert {request.arg("status") for request in http_server.received("/api/customers/")} == {"open"}
	assert pages[0].next_cursor == http_server.url("/api/customers/") + "?page=2&page_size=10&status=open"


def test_next_link_resumes_from_the_saved_url(http_server, connector_key):
	DrfList(http_server, "/api/customers/", rows(25))
	client = make_client(http_server, connector_key)
	first = list(iter_pages(client, "/api/customers/", DRF_NEXT, max_pages=1))
	resumed = iter_records(client, "/api/customers/", DRF_NEXT, start_cursor=first[-1].next_cursor)
	assert [record["id"] for record in resumed] == list(range(11, 26))


def test_next_link_last_page_resumes_at_itself(http_server, connector_key):
	DrfList(http_server, "/api/customers/", rows(25))
	pages = list(iter_pages(make_client(http_server, connector_key), "/api/customers/", DRF_NEXT))
	assert pages[-1].next_cursor == pages[-2].next_cursor
	assert pages[-1].next_cursor.endswith("page=3&page_size=10")


def test_next_link_reads_everything_when_the_server_caps_the_page_size(http_server, connector_key):
	drf = DrfList(http_server, "/api/customers/", rows(250))
	drf.max_page_size = 100
	spec = PaginationSpec(style="next_link", records_path="results", size_param="page_size", page_size=500)
	records = list(iter_records(make_client(http_server, connector_key), "/api/customers/", spec))
	assert [record["id"] for record in records] == list(range(1, 251))


def graph_users(server, origin: str | None = None):
	"""Graph: ``$top``, an opaque ``$skiptoken`` inside an absolute ``@odata.nextLink``, records in ``value``."""

	def answer(request: RecordedRequest) -> Reply:
		top, skip = int(request.arg("$top", "100")), int(request.arg("$skiptoken", "0"))
		users = [{"id": f"u-{n}", "displayName": f"User {n}"} for n in range(skip, min(skip + top, 23))]
		body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": users}
		if skip + top < 23:
			body["@odata.nextLink"] = (
				f"{origin or server.base_url}/v1.0/users?$top={top}&$skiptoken={skip + top}"
			)
		return Reply.json(body)

	server.route("/v1.0/users", answer)


GRAPH = PaginationSpec(
	style="next_link",
	records_path="value",
	next_link_path='"@odata.nextLink"',
	size_param="$top",
	page_size=10,
)


def test_next_link_follows_graph_odata_next_link(http_server, connector_key):
	graph_users(http_server)
	records = list(iter_records(make_client(http_server, connector_key), "/v1.0/users", GRAPH))
	assert [record["id"] for record in records] == [f"u-{n}" for n in range(23)]


def test_next_link_to_another_origin_is_refused(http_server, connector_key):
	port = http_server.httpd.server_address[1]
	graph_users(http_server, origin=f"http://localhost:{port}")
	pages = iter_pages(make_client(http_server, connector_key), "/v1.0/users", GRAPH)
	with pytest.raises(PermanentError, match="another host"):
		next(pages)
	assert len(http_server.received("/v1.0/users")) == 1


def test_unquoted_odata_path_gets_a_hint(http_server, connector_key):
	spec = PaginationSpec(style="next_link", next_link_path="@odata.nextLink")
	with pytest.raises(ConfigurationError, match="quote keys"):
		list(iter_pages(make_client(http_server, connector_key), "/v1.0/users", spec))


def salesforce_query(server):
	"""Salesforce REST query: 2000-record batches (here 4), a relative ``nextRecordsUrl`` and ``done``."""
	locator = "01gD0000002HU6KIAW"

	def batch(start: int) -> Reply:
		records = [
			{"attributes": {"type": "Account"}, "Id": f"001{n:05d}"} for n in range(start, min(start + 4, 10))
		]
		body = {"totalSize": 10, "done": start + 4 >= 10, "records": records}
		if start + 4 < 10:
			body["nextRecordsUrl"] = f"/services/data/v58.0/query/{locator}-{start + 4}"
		return Reply.json(body)

	server.route("/services/data/v58.0/query", lambda request: batch(0))
	for start in (4, 8):
		server.route(
			f"/services/data/v58.0/query/{locator}-{start}", lambda request, start=start: batch(start)
		)


def test_next_link_follows_a_relative_salesforce_next_records_url(http_server, connector_key):
	salesforce_query(http_server)
	client = make_client(http_server, connector_key, "/services/data/v58.0")
	spec = PaginationSpec(
		style="next_link", records_path="records", next_link_path="nextRecordsUrl", size_param=""
	)
	pages = list(iter_pages(client, "query", spec, params={"q": "SELECT Id FROM Account"}))
	assert [len(page.records) for page in pages] == [4, 4, 2]
	assert pages[0].next_cursor == http_server.url("/services/data/v58.0/query/01gD0000002HU6KIAW-4")
	assert http_server.received("/services/data/v58.0/query")[0].arg("q") == "SELECT Id FROM Account"


# has_more: Stripe lists, newest first

STRIPE = PaginationSpec(style="has_more", records_path="data", page_size=3)


def test_has_more_walks_a_stripe_list_with_starting_after(http_server, connector_key):
	stripe = StripeList(http_server)
	for created in range(1_700_000_000, 1_700_000_008):
		stripe.add(created)
	pages = list(iter_pages(make_client(http_server, connector_key), "/v1/charges", STRIPE))
	assert [[item["id"] for item in page.records] for page in pages] == [
		["ch_0008", "ch_0007", "ch_0006"],
		["ch_0005", "ch_0004", "ch_0003"],
		["ch_0002", "ch_0001"],
	]
	assert [request.arg("starting_after") for request in http_server.received("/v1/charges")] == [
		None,
		"ch_0006",
		"ch_0003",
	]
	assert [page.next_cursor for page in pages] == ["ch_0006", "ch_0003", "ch_0001"]


def test_has_more_resumes_after_the_saved_id(http_server, connector_key):
	stripe = StripeList(http_server)
	for created in range(1_700_000_000, 1_700_000_008):
		stripe.add(created)
	client = make_client(http_server, connector_key)
	saved = list(iter_pages(client, "/v1/charges", STRIPE, max_pages=1))[-1].next_cursor
	resumed = iter_records(client, "/v1/charges", STRIPE, start_cursor=saved)
	assert [item["id"] for item in resumed] == ["ch_0005", "ch_0004", "ch_0003", "ch_0002", "ch_0001"]


def test_has_more_needs_an_id_on_the_last_record(http_server, connector_key):
	http_server.route("/v1/things", Reply.json({"object": "list", "has_more": True, "data": [{"name": "x"}]}))
	with pytest.raises(ConfigurationError, match="no id at 'id'"):
		list(iter_pages(make_client(http_server, connector_key), "/v1/things", STRIPE, max_pages=5))
