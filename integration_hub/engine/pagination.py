"""Streaming pagination over a REST collection (page number, offset, cursor, RFC 8288 Link header, a next
link in the body, Stripe-style has_more) or over a SOAP operation (page number or offset as an argument).

Pages are fetched one at a time as the consumer asks for them, so memory stays flat however large the
collection is. Every page carries ``next_cursor``: the value to save (after the page is committed) so a
later run resumes without gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

from requests.utils import parse_header_links

from integration_hub.engine.errors import ConfigurationError, PermanentError
from integration_hub.engine.jsonpath import compile_path, optional_path
from integration_hub.engine.policy import header_value
from integration_hub.engine.rest import RestClient, RestResponse

if TYPE_CHECKING:
	from integration_hub.engine.soap import SoapClient

PaginationStyle = Literal["none", "page", "offset", "cursor", "link_header", "next_link", "has_more"]
Walker = Callable[[Any, "PaginationSpec", "str | None"], Iterator["Page"]]
"""One pagination style: (page source, spec, saved cursor) -> pages."""


@dataclass
class PaginationSpec:
	style: PaginationStyle = "none"
	records_path: str = ""
	"""JMESPath to the list of records in the body; "" means the body itself is the list."""
	page_param: str = "page"
	size_param: str = "limit"
	"""Query parameter for the page size; "" sends none (then ``page_size`` must be the server's own size)."""
	page_size: int = 100
	"""Records per page. Page style reads a shorter page as the last one, so it must not exceed the server's
	maximum page size."""
	start_page: int = 1
	offset_param: str = "offset"
	cursor_param: str = "cursor"
	next_cursor_path: str = "next_cursor"
	"""JMESPath to the next cursor in the body (cursor style)."""
	total_path: str = ""
	"""JMESPath to the total number of records, e.g. DRF's ``count`` (page and offset styles; optional)."""
	total_pages_path: str = ""
	"""JMESPath to the number of pages (page style; optional)."""
	has_more_path: str = ""
	"""JMESPath to a "more records follow" flag: optional in page and offset styles; "has_more" when empty
	in has_more style."""
	next_link_path: str = "next"
	"""JMESPath to the next page's URL in the body (next_link style): DRF ``next``, Graph
	``"@odata.nextLink"`` (quoted: it starts with @), Salesforce ``nextRecordsUrl``."""
	starting_after_param: str = "starting_after"
	"""Query parameter that takes the last record's id (has_more style)."""
	record_id_path: str = "id"
	"""JMESPath to a record's id, sent as ``starting_after_param`` for the next page (has_more style)."""


@dataclass
class Page:
	number: int
	"""1 for the first page this iteration fetched, 2 for the next, ..."""
	records: list
	next_cursor: str | None
	"""Where to resume after this page: next page number / offset, next cursor, the URL to fetch next
	(link_header, next_link), or the id of this page's last record (has_more).

	For the last page of a cursor or link collection it is the cursor/URL that fetched this page
	(re-reading it next time is harmless, skipping what appears after it would not be). For page
	style a page shorter than ``page_size`` resumes at itself, since later records may fill it.
	"""
	response: RestResponse | None
	"""The HTTP answer (None for SOAP pages)."""


@dataclass
class Fetched:
	"""One answer of a page source: the parsed body, the records found in it, and the HTTP answer if any."""

	body: Any
	records: list
	response: RestResponse | None


class PageSource(Protocol):
	fetched: int
	"""How many requests this source has made so far."""

	def fetch(self, extra: dict, past_end_ok: bool = False) -> Fetched | None:
		"""One page with ``extra`` parameters; None if ``past_end_ok`` and the remote says there is no such page."""
		...


def json_body(response: RestResponse, number: int) -> Any:
	body = response.json()
	if body is None and response.body.strip():
		raise PermanentError(
			f"Page {number}: the response is not JSON", response_excerpt=response.text_excerpt(300)
		)
	return body


def records_in(body: Any, records_path: Any, number: int) -> list:
	found = records_path.search(body) if records_path is not None else body
	if found is None:
		return []
	if not isinstance(found, list):
		where = f"records path {records_path.expression!r}" if records_path is not None else "the body"
		raise ConfigurationError(f"Page {number}: {where} is a {type(found).__name__}, not a list of records")
	return found


def is_true(value: Any) -> bool:
	"""A flag as APIs send it: JSON true, 1, or the text "true"/"1"/"yes"."""
	if isinstance(value, str):
		return value.strip().lower() in ("true", "1", "yes")
	return value is True or (type(value) is int and value == 1)


def number_at(path: Any, body: Any, number: int) -> int | None:
	found = path.search(body) if path is not None else None
	if found is None:
		return None
	if isinstance(found, int | float | str) and not isinstance(found, bool):
		try:
			return int(found)
		except ValueError:
			pass
	raise ConfigurationError(f"Page {number}: {path.expression!r} holds {found!r}, not a number")


class EndSignals:
	"""What a body says about the rest of the collection: a total, a page count or a has-more flag."""

	def __init__(self, spec: PaginationSpec) -> None:
		self.total = optional_path(spec.total_path, "total path")
		self.total_pages = optional_path(spec.total_pages_path, "total pages path")
		self.has_more = optional_path(spec.has_more_path, "has-more path")

	def more_after(
		self, body: Any, number: int, records_through: int, pages_through: int | None
	) -> bool | None:
		"""Do records follow the first ``records_through`` records / ``pages_through`` pages? None: not said."""
		verdicts = []
		flag = self.has_more.search(body) if self.has_more is not None else None
		if flag is not None:
			verdicts.append(is_true(flag))
		total = number_at(self.total, body, number)
		if total is not None:
			verdicts.append(records_through < total)
		pages = number_at(self.total_pages, body, number) if pages_through is not None else None
		if pages is not None:
			verdicts.append(pages_through < pages)
		return all(verdicts) if verdicts else None


def sized(spec: PaginationSpec, extra: dict) -> dict:
	if spec.size_param:
		extra[spec.size_param] = spec.page_size
	return extra


def next_link(response: RestResponse, current_url: str) -> str | None:
	"""The target of the Link header's rel="next" (rel may list several space-separated types)."""
	value = header_value(response.headers, "Link")
	if not value:
		return None
	for link in parse_header_links(value):
		relations = str(link.get("rel", "")).lower().split()
		if "next" in relations and link.get("url"):
			return urljoin(current_url, link["url"])
	return None


def same_origin(url: str, other: str) -> bool:
	first, second = urlsplit(url), urlsplit(other)
	return (first.scheme, first.hostname, first.port) == (second.scheme, second.hostname, second.port)


def iter_pages(
	client: RestClient,
	path: str,
	spec: PaginationSpec,
	params: dict | None = None,
	start_cursor: str | None = None,
	max_pages: int | None = None,
) -> Iterator[Page]:
	"""Fetch pages lazily. Stops on an empty page, the end the style detects, or ``max_pages``.

	A non-success answer raises (RetryableError / PermanentError / GoneError) via ``raise_for_outcome``.
	"""
	records_path = optional_path(spec.records_path, "records path")
	source = RestSource(client, path, dict(params or {}), records_path)
	yield from limited(walker(REST_STYLES, spec)(source, spec, start_cursor), max_pages)


def iter_records(
	client: RestClient,
	path: str,
	spec: PaginationSpec,
	params: dict | None = None,
	start_cursor: str | None = None,
	max_pages: int | None = None,
) -> Iterator[Any]:
	"""Every record of every page, streamed."""
	for page in iter_pages(client, path, spec, params, start_cursor, max_pages):
		yield from page.records


def iter_soap_pages(
	client: SoapClient,
	operation: str,
	arguments: dict,
	spec: PaginationSpec,
	start_cursor: str | None = None,
	max_pages: int | None = None,
) -> Iterator[Page]:
	"""Call a SOAP operation page by page (styles none, page, offset): the page number (``page_param``) or
	offset (``offset_param``) and the size (``size_param``) are passed as operation arguments, and the
	records are read at ``records_path`` in the serialized result. ``Page.response`` is None."""
	records_path = optional_path(spec.records_path, "records path")
	source = SoapSource(client, operation, dict(arguments), records_path)
	yield from limited(walker(SOAP_STYLES, spec)(source, spec, start_cursor), max_pages)


def walker(styles: dict[str, Walker], spec: PaginationSpec) -> Walker:
	if spec.style not in styles:
		known = ", ".join(styles)
		raise ConfigurationError(f"Pagination style {spec.style!r} cannot be used here; use one of: {known}")
	return styles[spec.style]


def limited(pages: Iterator[Page], max_pages: int | None) -> Iterator[Page]:
	for page in pages:
		yield page
		if max_pages is not None and page.number >= max_pages:
			return


class RestSource:
	"""GETs pages of one REST collection; user params are merged into every request that takes params."""

	def __init__(self, client: RestClient, path: str, params: dict, records_path: Any) -> None:
		self.client = client
		self.path = path
		self.params = params
		self.records_path = records_path
		self.fetched = 0

	def fetch(self, extra: dict, past_end_ok: bool = False) -> Fetched | None:
		response = self.send(extra, None)
		if past_end_ok and response.status_code == 404:
			return None
		return self.parse(response)

	def fetch_page(self, extra: dict | None, url: str | None = None) -> Fetched:
		"""``extra=None`` sends no params at all (a next link carries its own)."""
		return self.parse(self.send(extra, url))

	def send(self, extra: dict | None, url: str | None) -> RestResponse:
		params = {**self.params, **extra} if extra is not None else None
		response = self.client.request("GET", url or self.path, params=params)
		self.fetched += 1
		return response

	def parse(self, response: RestResponse) -> Fetched:
		response.raise_for_outcome()
		body = json_body(response, self.fetched)
		return Fetched(body, records_in(body, self.records_path, self.fetched), response)


class SoapSource:
	"""Calls one SOAP operation per page; faults and transport errors raise as SoapClient.call raises them."""

	def __init__(self, client: SoapClient, operation: str, arguments: dict, records_path: Any) -> None:
		self.client = client
		self.operation = operation
		self.arguments = arguments
		self.records_path = records_path
		self.fetched = 0

	def fetch(self, extra: dict, past_end_ok: bool = False) -> Fetched:
		body = self.client.call(self.operation, {**self.arguments, **extra})
		self.fetched += 1
		return Fetched(body, records_in(body, self.records_path, self.fetched), None)


def single_pages(source: PageSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	fetched = source.fetch({})
	if fetched is not None and fetched.records:
		yield Page(source.fetched, fetched.records, None, fetched.response)


def numbered_pages(source: PageSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	"""Page numbers from ``start_page``. Ends at an empty or short page, when the body says so, or at a
	404 for a later page (DRF's "Invalid page."); a 404 for the first page is an error."""
	signals = EndSignals(spec)
	page = int_cursor(start_cursor, spec.start_page)
	while True:
		fetched = source.fetch(sized(spec, {spec.page_param: page}), past_end_ok=page > spec.start_page)
		if fetched is None or not fetched.records:
			return
		count = len(fetched.records)
		position = page - spec.start_page
		more = signals.more_after(
			fetched.body, source.fetched, position * spec.page_size + count, position + 1
		)
		short = count < spec.page_size
		if short and more:
			raise ConfigurationError(
				f"Page {page} has {count} records for page_size {spec.page_size}, yet the body says more "
				f"follow: the server caps its page size, so set page_size to {count} or less"
			)
		yield Page(source.fetched, fetched.records, str(page if short else page + 1), fetched.response)
		if short or more is False:
			return
		page += 1


def offset_pages(source: PageSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	"""Offsets from 0 (or the saved one). Ends at an empty page or when the body says nothing follows."""
	signals = EndSignals(spec)
	offset = int_cursor(start_cursor, 0)
	while True:
		fetched = source.fetch(sized(spec, {spec.offset_param: offset}))
		if fetched is None or not fetched.records:
			return
		offset += len(fetched.records)
		more = signals.more_after(fetched.body, source.fetched, offset, None)
		yield Page(source.fetched, fetched.records, str(offset), fetched.response)
		if more is False:
			return


def cursor_pages(source: RestSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	next_path = compile_path(spec.next_cursor_path, "next cursor path")
	cursor = start_cursor or None
	while True:
		fetched = source.fetch_page(sized(spec, {spec.cursor_param: cursor} if cursor else {}))
		found = next_path.search(fetched.body)
		following = str(found) if found not in (None, "", False) else None
		if following == cursor:
			following = None
		if fetched.records:
			yield Page(source.fetched, fetched.records, following or cursor, fetched.response)
		if not fetched.records or following is None:
			return
		cursor = following


def header_link_pages(source: RestSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	"""Follows the Link header's rel="next" (GitHub, Shopify, WooCommerce)."""

	def following(fetched: Fetched, url: str) -> str | None:
		return next_link(fetched.response, url)

	return linked_pages(source, spec, start_cursor, following)


def body_link_pages(source: RestSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	"""Follows an absolute or relative URL in the body (DRF ``next``, Graph, Salesforce)."""
	link_path = compile_path(spec.next_link_path or "next", "next link path")

	def following(fetched: Fetched, url: str) -> str | None:
		found = link_path.search(fetched.body)
		return urljoin(url, found) if isinstance(found, str) and found.strip() else None

	return linked_pages(source, spec, start_cursor, following)


def linked_pages(
	source: RestSource,
	spec: PaginationSpec,
	start_cursor: str | None,
	find_next: Callable[[Fetched, str], str | None],
) -> Iterator[Page]:
	"""Fetch the path (or the saved URL), then each next URL, staying on the same origin."""
	url = source.client.url_for(start_cursor or source.path)
	extra: dict | None = None if start_cursor else sized(spec, {})
	while True:
		fetched = source.fetch_page(extra, url=url)
		following = find_next(fetched, url)
		if following is not None and not same_origin(following, url):
			raise PermanentError(
				f"The next-page link points to another host ({urlsplit(following).hostname})"
			)
		if following == url:
			following = None
		if fetched.records:
			yield Page(source.fetched, fetched.records, following or url, fetched.response)
		if not fetched.records or following is None:
			return
		url, extra = following, None


def has_more_pages(source: RestSource, spec: PaginationSpec, start_cursor: str | None) -> Iterator[Page]:
	"""Stripe style: ask for the records after the last one's id while the body's flag says more follow.

	Every page resumes after its own last record, so a saved cursor never re-reads or skips a record.
	"""
	flag_path = compile_path(spec.has_more_path or "has_more", "has-more path")
	id_path = compile_path(spec.record_id_path or "id", "record id path")
	after = start_cursor or None
	while True:
		fetched = source.fetch_page(sized(spec, {spec.starting_after_param: after} if after else {}))
		if not fetched.records:
			return
		last_id = id_path.search(fetched.records[-1])
		if last_id in (None, "") or isinstance(last_id, dict | list):
			raise ConfigurationError(
				f"Page {source.fetched}: the last record has no id at {id_path.expression!r}, so the next page "
				"cannot be asked for; set the record id path"
			)
		after = str(last_id)
		yield Page(source.fetched, fetched.records, after, fetched.response)
		if not is_true(flag_path.search(fetched.body)):
			return


REST_STYLES: dict[str, Walker] = {
	"none": single_pages,
	"page": numbered_pages,
	"offset": offset_pages,
	"cursor": cursor_pages,
	"link_header": header_link_pages,
	"next_link": body_link_pages,
	"has_more": has_more_pages,
}

SOAP_STYLES: dict[str, Walker] = {"none": single_pages, "page": numbered_pages, "offset": offset_pages}


def int_cursor(value: str | None, default: int) -> int:
	if value in (None, ""):
		return default
	try:
		return int(str(value))
	except ValueError:
		raise ConfigurationError(f"Saved cursor {value!r} is not a number") from None
