"""SOAP operations as a page source: page number or offset passed as an operation argument, records found in
the serialized result, against a real spyne service on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

spyne = pytest.importorskip("spyne", reason="spyne 2.14 (the SOAP test server) only runs on Python < 3.12")

from spyne import Application, Array, ComplexModel, Integer, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from werkzeug.serving import make_server

from integration_hub.engine.errors import ConfigurationError
from integration_hub.engine.pagination import PaginationSpec, iter_soap_pages
from integration_hub.engine.soap import SoapClient, SoapConfig

TNS = "urn:integration-hub:test:attendance"
PUNCHES = [
	{"id": n, "emp_code": f"E{n % 3}", "punch_time": f"2024-05-01 {8 + n // 60:02d}:{n % 60:02d}:00"}
	for n in range(1, 24)
]


class Punch(ComplexModel):
	__namespace__ = TNS
	id = Integer
	emp_code = Unicode
	punch_time = Unicode


class PunchPage(ComplexModel):
	__namespace__ = TNS
	total = Integer
	punches = Array(Punch)


def matching(since: str | None) -> list[dict]:
	return [punch for punch in PUNCHES if since is None or punch["punch_time"] >= since]


class AttendanceService(ServiceBase):
	calls: list[tuple] = []

	@rpc(Unicode, Integer, Integer, _returns=PunchPage)
	def ListPunches(ctx, since, page, page_size):
		AttendanceService.calls.append(("ListPunches", page, page_size))
		found = matching(since)
		start = (page - 1) * page_size
		return PunchPage(
			total=len(found), punches=[Punch(**punch) for punch in found[start : start + page_size]]
		)

	@rpc(Integer, Integer, _returns=Array(Punch))
	def PunchesFrom(ctx, offset, limit):
		AttendanceService.calls.append(("PunchesFrom", offset, limit))
		return [Punch(**punch) for punch in PUNCHES[offset : offset + limit]]


class WsgiServer:
	"""A threaded werkzeug server for one WSGI app on 127.0.0.1."""

	def __init__(self, app) -> None:
		self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
		self.thread = threading.Thread(
			target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
		)
		self.thread.start()

	@property
	def base_url(self) -> str:
		return f"http://127.0.0.1:{self.httpd.server_address[1]}"

	def close(self) -> None:
		self.httpd.shutdown()
		self.httpd.server_close()


@pytest.fixture(scope="module")
def attendance_server() -> Iterator[WsgiServer]:
	for name in ("spyne", "werkzeug"):
		logging.getLogger(name).setLevel(logging.CRITICAL)
	application = Application(
		[AttendanceService],
		tns=TNS,
		name="Attendance",
		in_protocol=Soap11(validator="lxml"),
		out_protocol=Soap11(),
	)
	server = WsgiServer(WsgiApplication(application))
	yield server
	server.close()


@pytest.fixture
def client(attendance_server, connector_key) -> SoapClient:
	AttendanceService.calls.clear()
	wsdl = f"{attendance_server.base_url}/attendance?wsdl"
	return SoapClient(SoapConfig(connector_key, wsdl, allow_private_network=True))


PAGED = PaginationSpec(
	style="page", records_path="punches.Punch", size_param="page_size", page_size=10, total_path="total"
)


def test_page_numbers_are_sent_as_an_argument_and_the_total_ends_the_walk(client):
	pages = list(iter_soap_pages(client, "ListPunches", {"since": None}, PAGED))
	assert [len(page.records) for page in pages] == [10, 10, 3]
	assert [page.records[0]["id"] for page in pages] == [1, 11, 21]
	assert AttendanceService.calls == [("ListPunches", 1, 10), ("ListPunches", 2, 10), ("ListPunches", 3, 10)]
	assert [page.next_cursor for page in pages] == ["2", "3", "3"]
	assert all(page.response is None for page in pages)


def test_other_arguments_are_kept_on_every_page(client):
	records = [
		record
		for page in iter_soap_pages(client, "ListPunches", {"since": "2024-05-01 08:15:00"}, PAGED)
		for record in page.records
	]
	assert [record["id"] for record in records] == list(range(15, 24))


def test_resumes_at_the_saved_page(client):
	pages = list(iter_soap_pages(client, "ListPunches", {"since": None}, PAGED, start_cursor="2"))
	assert [page.records[0]["id"] for page in pages] == [11, 21]


def test_offset_with_a_bare_array_result_until_it_comes_back_empty(client):
	spec = PaginationSpec(style="offset", page_size=10)
	pages = list(iter_soap_pages(client, "PunchesFrom", {}, spec, max_pages=10))
	assert [len(page.records) for page in pages] == [10, 10, 3]
	assert [page.next_cursor for page in pages] == ["10", "20", "23"]
	assert AttendanceService.calls[-1] == ("PunchesFrom", 23, 10)


def test_none_style_calls_once(client):
	spec = PaginationSpec(style="none", records_path="punches.Punch")
	pages = list(iter_soap_pages(client, "ListPunches", {"since": None, "page": 1, "page_size": 5}, spec))
	assert len(pages) == 1 and len(pages[0].records) == 5
	assert len(AttendanceService.calls) == 1


@pytest.mark.parametrize("style", ["cursor", "link_header", "next_link", "has_more"])
def test_http_only_styles_are_refused_for_soap(client, style):
	with pytest.raises(ConfigurationError, match="none, page, offset"):
		list(iter_soap_pages(client, "PunchesFrom", {}, PaginationSpec(style=style)))
