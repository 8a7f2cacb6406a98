"""Watermarks for incremental pulls: remote times read in the right zone, the cursor advanced over records, and
the since-value sent with an inclusive overlap, run against loopback list APIs that gain records between runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from conftest import RecordedRequest, Reply
from fake_apis import DrfList, StripeList

from integration_hub.engine.errors import ConfigurationError, MappingError
from integration_hub.engine.pagination import PaginationSpec, iter_records
from integration_hub.engine.rest import RestClient, RestConfig
from integration_hub.engine.watermark import advance, parse_remote_time, since_value, to_site_time

UTC = timezone.utc
KOLKATA = "Asia/Kolkata"
DEVICE_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc(*parts: int) -> datetime:
	return datetime(*parts, tzinfo=UTC)


# parse_remote_time / to_site_time


@pytest.mark.parametrize(
	("value", "expected"),
	[
		("2024-05-01T10:00:00Z", utc(2024, 5, 1, 10)),
		("2024-05-01t10:00:00z", utc(2024, 5, 1, 10)),
		("2024-05-01T10:00:00+05:30", utc(2024, 5, 1, 4, 30)),
		("2024-05-01T10:00:00-0800", utc(2024, 5, 1, 18)),
		("2024-05-01 10:00:00+00", utc(2024, 5, 1, 10)),
		("2024-05-01 10:00:00", utc(2024, 5, 1, 4, 30)),
		("2024-05-01T10:00", utc(2024, 5, 1, 4, 30)),
		("2024-05-01", utc(2024, 4, 30, 18, 30)),
		("2024-05-01T10:00:00.123456789Z", utc(2024, 5, 1, 10, 0, 0, 123456)),
		("2024-05-01 10:00:00,5", utc(2024, 5, 1, 4, 30, 0, 500000)),
		(1714557600, utc(2024, 5, 1, 10)),
		(1714557600.25, utc(2024, 5, 1, 10, 0, 0, 250000)),
		(1714557600123, utc(2024, 5, 1, 10, 0, 0, 123000)),
		(Decimal("1714557600"), utc(2024, 5, 1, 10)),
		(" 1714557600 ", utc(2024, 5, 1, 10)),
		("1714557600123", utc(2024, 5, 1, 10, 0, 0, 123000)),
		(datetime(2024, 5, 1, 10), utc(2024, 5, 1, 4, 30)),
		(datetime(2024, 5, 1, 10, tzinfo=UTC), utc(2024, 5, 1, 10)),
		(date(2024, 5, 1), utc(2024, 4, 30, 18, 30)),
	],
)
def test_parse_remote_time_reads_naive_values_in_the_device_zone(value, expected):
	parsed = parse_remote_time(value, KOLKATA)
	assert parsed.tzinfo is not None
	assert parsed == expected


@pytest.mark.parametrize(
	"value",
	["yesterday", "", "2024-13-01 10:00:00", "2024-05-01T25:00:00", "10:00", True, None, {"at": 1}, 1e300],
)
def test_parse_remote_time_refuses_garbage_with_a_mapping_error(value):
	with pytest.raises(MappingError, match="time"):
		parse_remote_time(value, KOLKATA)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_zone_is_a_configuration_error(zone):
	with pytest.raises(ConfigurationError, match="time zone"):
		parse_remote_time("2024-05-01 10:00:00", zone)


def test_to_site_time_gives_naive_wall_clock_time_of_the_site():
	assert to_site_time("2024-05-01T04:30:00Z", "UTC", KOLKATA) == datetime(2024, 5, 1, 10)
	assert to_site_time("2024-05-01 10:00:00", "Asia/Dubai", KOLKATA) == datetime(2024, 5, 1, 11, 30)
	assert to_site_time(1714557600, KOLKATA, "Europe/Berlin") == datetime(2024, 5, 1, 12)
	assert to_site_time("2024-05-01 10:00:00", KOLKATA, KOLKATA).tzinfo is None


# advance / since_value


def test_advance_keeps_the_latest_time_as_utc_iso():
	records = [{"t": "2024-05-01 09:00:00"}, {"t": "2024-05-01 10:00:00"}, {"t": None}, {"other": 1}]
	assert advance(None, records, "t", "time", KOLKATA) == "2024-05-01T04:30:00Z"
	assert advance("2024-05-01T05:00:00Z", records, "t", "time", KOLKATA) == "2024-05-01T05:00:00Z"
	assert advance("2024-05-01T04:00:00Z", [], "t", "time", KOLKATA) == "2024-05-01T04:00:00Z"
	assert advance(None, [{"t": None}], "t", "time", KOLKATA) is None


def test_advance_reads_nested_paths_and_epoch_numbers():
	records = [{"meta": {"created": 1714557600}}, {"meta": {"created": 1714557599}}]
	assert advance(None, records, "meta.created", "time", "UTC") == "2024-05-01T10:00:00Z"


def test_advance_compares_numeric_ids_as_numbers_and_other_ids_as_text():
	assert advance("9", [{"id": 10}, {"id": 8}], "id", "id", "UTC") == "10"
	assert advance("100", [{"id": "99"}], "id", "id", "UTC") == "100"
	assert advance(None, [{"id": "inv-0010"}, {"id": "inv-0009"}], "id", "id", "UTC") == "inv-0010"


def test_advance_names_the_field_of_a_garbage_time():
	with pytest.raises(MappingError, match="punch_time") as caught:
		advance(None, [{"punch_time": "not a time"}], "punch_time", "time", KOLKATA)
	assert caught.value.field == "punch_time"


@pytest.mark.parametrize(
	("kind", "fmt", "tz", "expected"),
	[
		("time", "iso", "UTC", "2024-05-01T04:25:00Z"),
		("time", "iso", KOLKATA, "2024-05-01T09:55:00+05:30"),
		("time", "epoch", "UTC", "1714537500"),
		("time", "epoch_ms", "UTC", "1714537500000"),
		("time", DEVICE_FORMAT, KOLKATA, "2024-05-01 09:55:00"),
		("id", "iso", "UTC", "2024-05-01T04:30:00Z"),
	],
)
def test_since_value_subtracts_the_overlap_and_formats(kind, fmt, tz, expected):
	assert since_value("2024-05-01T04:30:00Z", kind, 300, fmt, tz) == expected


def test_since_value_floors_to_keep_the_boundary_inclusive():
	assert since_value("2024-05-01T04:30:00.900Z", "time", 0, "epoch") == "1714537800"
	assert since_value("2024-05-01T04:30:00.900Z", "time", 0, DEVICE_FORMAT, KOLKATA) == "2024-05-01 10:00:00"


def test_since_value_for_an_id_is_the_id_and_none_before_the_first_run():
	assert since_value("4711", "id", 3600) == "4711"
	assert since_value(None, "time", 300) is None


@pytest.mark.parametrize(
	("call", "text"),
	[
		(lambda: since_value("2024-05-01T04:30:00Z", "time", 0, "yyyy-mm-dd"), "format"),
		(lambda: since_value("2024-05-01T04:30:00Z", "time", -5), "overlap"),
		(lambda: since_value("2024-05-01T04:30:00Z", "date", 0), "kind"),
		(lambda: advance(None, [], "id", "sequence", "UTC"), "kind"),
		(lambda: advance(None, [], "data[", "time", "UTC"), "cursor field"),
	],
)
def test_configuration_mistakes(call, text):
	with pytest.raises(ConfigurationError, match=text):
		call()


# Incremental pulls against servers that gain records between two runs


class Device:
	"""An attendance API shaped like ZKBio Time's transactions list: naive device-local ``punch_time`` (when
	the finger touched the reader) and ``upload_time`` (when the punch reached the server), ids assigned on
	upload, django-filter style ``__gte`` filters, DRF pages under ``data``."""

	def __init__(self, server) -> None:
		self.punches: list[dict] = []
		self.list = DrfList(server, "/iclock/api/transactions/", [], records_key="data")
		server.route(self.list.path, self.answer)

	def punch(self, emp_code: str, punch_time: str, upload_time: str | None = None) -> dict:
		entry = {
			"id": len(self.punches) + 1,
			"emp_code": emp_code,
			"punch_time": punch_time,
			"upload_time": upload_time or punch_time,
		}
		self.punches.append(entry)
		return entry

	def answer(self, request: RecordedRequest) -> Reply:
		selected = self.punches
		for field in ("punch_time", "upload_time"):
			since = request.arg(f"{field}__gte")
			if since is not None:
				selected = [punch for punch in selected if punch[field] >= since]
		if request.arg("id__gte") is not None:
			selected = [punch for punch in selected if punch["id"] >= int(request.arg("id__gte"))]
		self.list.records = selected
		return self.list.answer(request)


DEVICE_PAGES = PaginationSpec(style="page", records_path="data", size_param="page_size", page_size=2)


def pull(client: RestClient, watermark: str | None, cursor_field: str, kind: str, overlap: int) -> tuple:
	"""One incremental run as the glue makes it: since-filter from the watermark, walk, advance."""
	since = since_value(watermark, kind, overlap, DEVICE_FORMAT, KOLKATA)
	params = {} if since is None else {f"{cursor_field}__gte": since}
	records = list(iter_records(client, "/iclock/api/transactions/", DEVICE_PAGES, params=params))
	return records, advance(watermark, records, cursor_field, kind, KOLKATA)


@pytest.fixture
def device(http_server, connector_key):
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	return Device(http_server), client


def test_naive_device_times_become_the_right_utc_watermark(device):
	api, client = device
	api.punch("E1", "2024-05-01 09:00:00")
	api.punch("E2", "2024-05-01 10:00:00")
	_, watermark = pull(client, None, "punch_time", "time", 0)
	assert watermark == "2024-05-01T04:30:00Z"
	api.punch("E3", "2024-05-01 10:00:30")
	pull(client, watermark, "punch_time", "time", 0)
	assert http_server_filters(api)[-1] == "2024-05-01 10:00:00", "sent back in the device's own zone"


def http_server_filters(api: Device) -> list[str | None]:
	return [request.arg("punch_time__gte") for request in api.list.server.received(api.list.path)]


def test_records_sharing_the_boundary_timestamp_are_not_skipped(device):
	api, client = device
	api.punch("E1", "2024-05-01 09:00:00")
	api.punch("E2", "2024-05-01 09:05:00")
	first, watermark = pull(client, None, "punch_time", "time", 0)
	assert [punch["emp_code"] for punch in first] == ["E1", "E2"]
	same_second = api.punch("E3", "2024-05-01 09:05:00")
	later = api.punch("E4", "2024-05-01 09:06:00")
	second, _ = pull(client, watermark, "punch_time", "time", 0)
	assert same_second in second and later in second
	assert http_server_filters(api)[-1] == "2024-05-01 09:05:00"


def late_punch_scenario(api: Device) -> dict:
	"""Punches up to 10:25 are read at 10:30; then a reader that was offline since 09:00 uploads at 11:00."""
	api.punch("E1", "2024-05-01 08:55:00")
	api.punch("E2", "2024-05-01 10:25:00", "2024-05-01 10:25:10")
	return {"late": ("E3", "2024-05-01 09:00:00", "2024-05-01 11:00:00")}


@pytest.mark.parametrize(
	("cursor_field", "kind", "overlap", "seen"),
	[
		("upload_time", "time", 60, True),
		("id", "id", 0, True),
		("punch_time", "time", 2 * 3600, True),
		("punch_time", "time", 5 * 60, False),
	],
)
def test_a_late_punch_is_seen_when_the_cursor_follows_upload_or_the_overlap_covers_it(
	device, cursor_field, kind, overlap, seen
):
	api, client = device
	scenario = late_punch_scenario(api)
	_, watermark = pull(client, None, cursor_field, kind, overlap)
	late = api.punch(*scenario["late"])
	second, _ = pull(client, watermark, cursor_field, kind, overlap)
	assert (late in second) is seen


def test_stripe_newest_first_list_sees_objects_created_between_runs(http_server, connector_key):
	stripe = StripeList(http_server)
	start = 1_714_557_600
	for offset in range(5):
		stripe.add(start + offset)
	client = RestClient(RestConfig(connector_key, http_server.base_url, allow_private_network=True))
	spec = PaginationSpec(style="has_more", records_path="data", page_size=2)

	def run(watermark: str | None) -> tuple[list[dict], str | None]:
		since = since_value(watermark, "time", 0, "epoch")
		params = {} if since is None else {"created[gte]": since}
		records = list(iter_records(client, "/v1/charges", spec, params=params))
		return records, advance(watermark, records, "created", "time", "UTC")

	first, watermark = run(None)
	assert len(first) == 5 and watermark == "2024-05-01T10:00:04Z"
	same_second = stripe.add(start + 4)
	newer = [stripe.add(start + 10), stripe.add(start + 11), stripe.add(start + 12)]
	second, watermark = run(watermark)
	assert [item["id"] for item in second] == [item["id"] for item in reversed(newer)] + [
		"ch_0006",
		"ch_0005",
	]
	assert same_second in second
	assert watermark == "2024-05-01T10:00:12Z"
	assert http_server.received("/v1/charges")[-1].arg("created[gte]") == str(start + 4)
