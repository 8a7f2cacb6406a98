"""Pagination over 10,000 records generated on the fly: every style streams with flat memory and resumes."""

from __future__ import annotations

import gc
import tracemalloc
from urllib.parse import urlencode

import pytest
from conftest import RecordedRequest, Reply

from integration_hub.engine.errors import ConfigurationError, PermanentError, RetryableError
from integration_hub.engine.pagination import PaginationSpec, iter_pages, iter_records, next_link
from integration_hub.engine.policy import Outcome
from integration_hub.engine.rest import RestClient, RestConfig, RestResponse

TOTAL = 10_000
SIZE = 100


def make_record(index: int) -> dict:
	return {
		"id": index,
		"name": f"Customer {index:05d}",
		"email": f"customer{index}@example.com",
		"active": True,
	}


def records_slice(start: int, count: int) -> list[dict]:
	return [make_record(i) for i in range(max(start, 0), min(start + count, TOTAL))]


def page_route(request: RecordedRequest) -> Reply:
	page, limit = int(request.arg("page", "1")), int(request.arg("limit", "10"))
	return Reply.json(records_slice((page - 1) * limit, limit))


def offset_route(request: RecordedRequest) -> Reply:
	offset, limit = int(request.arg("offset", "0")), int(request.arg("limit", "10"))
	return Reply.json({"results": records_slice(offset, limit), "count": TOTAL})


def cursor_route(request: RecordedRequest) -> Reply:
	start = int((request.arg("cursor") or "c-0").removeprefix("c-"))
	limit = int(request.arg("limit", "10"))
	following = f"c-{start + limit}" if start + limit < TOTAL else None
	return Reply.json({"data": {"items": records_slice(start, limit)}, "meta": {"next": following}})


def link_route(request: RecordedRequest) -> Reply:
	page, per_page = int(request.arg("page", "1")), int(request.arg("per_page", "10"))
	links = [f'</link?{urlencode({"page": 1, "per_page": per_page})}>; rel="first"']
	if page * per_page < TOTAL:
		links.append(f'</link?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next nofollow"')
	if page > 1:
		links.append(f'</link?{urlencode({"page": page - 1, "per_page": per_page})}>; rel="prev"')
	return Reply.json(records_slice((page - 1) * per_page, per_page), headers={"Link": ", ".join(links)})


SPECS = {
	"page": ("/page", PaginationSpec(style="page", page_size=SIZE)),
	"offset": ("/offset", PaginationSpec(style="offset", page_size=SIZE, records_path="results")),
	"cursor": (
		"/cursor",
		PaginationSpec(
			style="cursor", page_size=SIZE, records_path="data.items", next_cursor_path="meta.next"
		),
	),
	"link_header": ("/link", PaginationSpec(style="link_header", page_size=SIZE, size_param="per_page")),
}


@pytest.fixture
def paged_server(http_server, connector_key):
	for path, route in (
		("/page", page_route),
		("/offset", offset_route),
		("/cursor", cursor_route),
		("/link", link_route),
	):
		http_server.route(path, route)
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	return http_server, client


def traced_peak(action) -> int:
	gc.collect()
	tracemalloc.start()
	try:
		action()
		return tracemalloc.get_traced_memory()[1]
	finally:
		tracemalloc.stop()


@pytest.fixture(scope="module")
def all_records_bytes() -> int:
	"""What holding every record at once costs, measured the same way."""
	holder = []
	return traced_peak(lambda: holder.append(records_slice(0, TOTAL)))


@pytest.mark.parametrize("style", list(SPECS))
def test_streams_ten_thousand_records_with_flat_memory(paged_server, style, all_records_bytes):
	server, client = paged_server
	path, spec = SPECS[style]
	server.keep_log = False
	seen = {"next_id": 0}
	samples = []

	def consume() -> None:
		for record in iter_records(client, path, spec):
			assert record["id"] == seen["next_id"]
			seen["next_id"] += 1
			if seen["next_id"] % 1000 == 0:
				samples.append(tracemalloc.get_traced_memory()[0])

	peak = traced_peak(consume)
	assert seen["next_id"] == TOTAL
	assert server.count(path) in (TOTAL // SIZE, TOTAL // SIZE + 1)
	growth = max(samples) - samples[0]
	assert growth < all_records_bytes / 20, f"memory grew by {growth} B from record 1,000 to 10,000"
	assert peak < all_records_bytes / 4, f"peak {peak} B vs {all_records_bytes} B to hold all records"


@pytest.mark.parametrize("style", list(SPECS))
def test_generator_fetches_page_n_only_when_asked(paged_server, style):
	server, client = paged_server
	path, spec = SPECS[style]
	pages = iter_pages(client, path, spec)
	assert server.received(path) == [], "nothing is fetched before the first page is asked for"
	for taken in range(1, 6):
		page = next(pages)
		assert page.number == taken
		assert len(server.received(path)) == taken
		assert [r["id"] for r in page.records] == list(range((taken - 1) * SIZE, taken * SIZE))
	pages.close()


@pytest.mark.parametrize(
	("style", "cursor_after_page_3"),
	[("page", "4"), ("offset", "300"), ("cursor", "c-300"), ("link_header", "/link?page=4&per_page=100")],
)
def test_next_cursor_resumes_without_gaps_or_repeats(paged_server, style, cursor_after_page_3):
	_, client = paged_server
	path, spec = SPECS[style]
	first_run = list(iter_pages(client, path, spec, max_pages=3))
	assert len(first_run) == 3
	saved = first_run[-1].next_cursor
	assert saved is not None and saved.endswith(cursor_after_page_3)
	resumed = iter_records(client, path, spec, start_cursor=saved, max_pages=2)
	assert [r["id"] for r in resumed] == list(range(300, 500))


def test_page_style_resumes_on_a_short_last_page(paged_server):
	_, client = paged_server
	spec = PaginationSpec(style="page", page_size=300)
	pages = list(iter_pages(client, "/page", spec, start_cursor="33"))
	assert [len(p.records) for p in pages] == [300, 100]
	assert [p.next_cursor for p in pages] == ["34", "34"]


def test_last_cursor_and_link_pages_resume_at_themselves(paged_server):
	_, client = paged_server
	path, spec = SPECS["cursor"]
	last = list(iter_pages(client, path, spec, start_cursor="c-9900"))
	assert len(last) == 1 and last[0].next_cursor == "c-9900"
	path, spec = SPECS["link_header"]
	start = client.url_for("/link?page=100&per_page=100")
	last = list(iter_pages(client, path, spec, start_cursor=start))
	assert len(last) == 1 and last[0].next_cursor == start


def test_user_params_are_kept_and_none_style_reads_one_page(http_server, connector_key):
	http_server.route("/all", lambda r: Reply.json({"items": records_slice(0, 3), "status": r.arg("status")}))
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	pages = list(iter_pages(client, "/all", PaginationSpec(records_path="items"), params={"status": "open"}))
	assert len(pages) == 1 and len(pages[0].records) == 3 and pages[0].next_cursor is None
	assert pages[0].response.json()["status"] == "open"


def test_error_mid_stream_raises(http_server, connector_key):
	def flaky(request: RecordedRequest) -> Reply:
		if request.arg("page") == "3":
			return Reply.json({"message": "busy"}, 503, {"Retry-After": "5"})
		return page_route(request)

	http_server.route("/flaky", flaky)
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	pages = iter_pages(client, "/flaky", PaginationSpec(style="page", page_size=10))
	assert next(pages).number == 1 and next(pages).number == 2
	with pytest.raises(RetryableError) as caught:
		next(pages)
	assert caught.value.status_code == 503 and caught.value.retry_after == 5.0


@pytest.mark.parametrize(
	("reply", "error", "text"),
	[
		(Reply.json({"results": {"not": "a list"}}), ConfigurationError, "not a list"),
		(Reply(200, b"<html>oops</html>"), PermanentError, "not JSON"),
	],
)
def test_bad_bodies(http_server, connector_key, reply, error, text):
	http_server.route("/bad", reply)
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	with pytest.raises(error, match=text):
		list(iter_pages(client, "/bad", PaginationSpec(style="offset", records_path="results")))


def test_invalid_records_path_is_a_configuration_error(paged_server):
	_, client = paged_server
	with pytest.raises(ConfigurationError, match="records path"):
		list(iter_pages(client, "/page", PaginationSpec(style="page", records_path="data[")))


def test_link_to_another_host_is_refused(http_server, connector_key):
	port = http_server.httpd.server_address[1]
	http_server.route(
		"/hop", Reply.json([1], headers={"Link": f'<http://localhost:{port}/steal>; rel="next"'})
	)
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	pages = iter_pages(client, "/hop", PaginationSpec(style="link_header"))
	with pytest.raises(PermanentError, match="another host"):
		next(pages)
	assert http_server.received("/steal") == []


def test_repeating_cursor_stops(http_server, connector_key):
	http_server.route("/loop", Reply.json({"items": [1, 2], "next": "same"}))
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	spec = PaginationSpec(style="cursor", records_path="items", next_cursor_path="next")
	assert len(list(iter_pages(client, "/loop", spec, max_pages=10))) == 2


@pytest.mark.parametrize(
	("header", "expected"),
	[
		('<https://api.example/items?page=2>; rel="next"', "https://api.example/items?page=2"),
		('</items?page=3>; rel="prev", </items?page=5>; rel="last next"', "https://api.example/items?page=5"),
		('<https://api.example/a?x=1,2>; rel="next"; title="x"', "https://api.example/a?x=1,2"),
		('<https://api.example/items?page=9>; rel="last"', None),
		("", None),
	],
)
def test_link_header_parsing(header, expected):
	response = RestResponse(
		200, {"link": header} if header else {}, b"[]", 1.0, Outcome("success", 200, None, "")
	)
	assert next_link(response, "https://api.example/items?page=1") == expected
