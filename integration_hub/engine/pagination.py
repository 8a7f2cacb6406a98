"""Streaming pagination over a REST collection: page number, offset, cursor or RFC 8288 Link header.

Pages are fetched one at a time as the consumer asks for them, so memory stays flat however large the
collection is. Every page carries ``next_cursor``: the value to save (after the page is committed) so a
later run resumes without gaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import jmespath
import jmespath.exceptions
from requests.utils import parse_header_links

from integration_hub.engine.errors import ConfigurationError, PermanentError
from integration_hub.engine.policy import header_value
from integration_hub.engine.rest import RestClient, RestResponse

PaginationStyle = Literal["none", "page", "offset", "cursor", "link_header"]


@dataclass
class PaginationSpec:
	style: PaginationStyle = "none"
	records_path: str = ""
	"""JMESPath to the list of records in the body; "" means the body itself is the list."""
	page_param: str = "page"
	size_param: str = "limit"
	page_size: int = 100
	start_page: int = 1
	offset_param: str = "offset"
	cursor_param: str = "cursor"
	next_cursor_path: str = "next_cursor"
	"""JMESPath to the next cursor in the body (cursor style)."""


@dataclass
class Page:
	number: int
	"""1 for the first page this iteration fetched, 2 for the next, ..."""
	records: list
	next_cursor: str | None
	"""Where to resume after this page: next page number / offset, next cursor, or next link URL.

	For the last page of a cursor or link collection it is the cursor/URL that fetched this page
	(re-reading it next time is harmless, skipping what appears after it would not be). For page
	style a page shorter than ``page_size`` resumes at itself, since later records may fill it.
	"""
	response: RestResponse


def compile_path(expression: str, what: str) -> Any:
	try:
		return jmespath.compile(expression)
	except jmespath.exceptions.JMESPathError as exc:
		raise ConfigurationError(f"Invalid {what} {expression!r}: {exc}") from None


def extract_records(response: RestResponse, records_path: Any, number: int) -> list:
	body = response.json()
	if body is None and response.body.strip():
		raise PermanentError(
			f"Page {number}: the response is not JSON", response_excerpt=response.text_excerpt(300)
		)
	found = records_path.search(body) if records_path is not None else body
	if found is None:
		return []
	if not isinstance(found, list):
		where = f"records path {records_path.expression!r}" if records_path is not None else "the body"
		raise ConfigurationError(f"Page {number}: {where} is a {type(found).__name__}, not a list of records")
	return found


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
	"""Fetch pages lazily. Stops on an empty page, a missing next cursor / rel=next, or ``max_pages``.

	A non-success answer raises (RetryableError / PermanentError / GoneError) via ``raise_for_outcome``.
	"""
	records_path = compile_path(spec.records_path, "records path") if spec.records_path else None
	fetch = PageFetcher(client, path, spec, dict(params or {}), records_path)
	steps = {
		"none": fetch.single,
		"page": fetch.numbered,
		"offset": fetch.offset,
		"cursor": fetch.cursor,
		"link_header": fetch.linked,
	}
	if spec.style not in steps:
		raise ConfigurationError(f"Unknown pagination style {spec.style!r}")
	for page in steps[spec.style](start_cursor):
		yield page
		if max_pages is not None and page.number >= max_pages:
			return


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


class PageFetcher:
	"""One generator per pagination style; each yields only non-empty pages and stops at the first empty one."""

	def __init__(
		self, client: RestClient, path: str, spec: PaginationSpec, params: dict, records_path: Any
	) -> None:
		self.client = client
		self.path = path
		self.spec = spec
		self.params = params
		self.records_path = records_path
		self.fetched = 0

	def get(self, path_or_url: str, extra: dict | None) -> tuple[RestResponse, list]:
		params = {**self.params, **extra} if extra is not None else None
		response = self.client.request("GET", path_or_url, params=params).raise_for_outcome()
		self.fetched += 1
		return response, extract_records(response, self.records_path, self.fetched)

	def sized(self, extra: dict) -> dict:
		if self.spec.size_param:
			extra[self.spec.size_param] = self.spec.page_size
		return extra

	def single(self, start_cursor: str | None) -> Iterator[Page]:
		response, records = self.get(self.path, {})
		if records:
			yield Page(self.fetched, records, None, response)

	def numbered(self, start_cursor: str | None) -> Iterator[Page]:
		page = int_cursor(start_cursor, self.spec.start_page)
		while True:
			response, records = self.get(self.path, self.sized({self.spec.page_param: page}))
			if not records:
				return
			resume = page + 1 if len(records) >= self.spec.page_size else page
			yield Page(self.fetched, records, str(resume), response)
			page += 1

	def offset(self, start_cursor: str | None) -> Iterator[Page]:
		offset = int_cursor(start_cursor, 0)
		while True:
			response, records = self.get(self.path, self.sized({self.spec.offset_param: offset}))
			if not records:
				return
			offset += len(records)
			yield Page(self.fetched, records, str(offset), response)

	def cursor(self, start_cursor: str | None) -> Iterator[Page]:
		next_path = compile_path(self.spec.next_cursor_path, "next cursor path")
		cursor = start_cursor or None
		while True:
			extra = self.sized({self.spec.cursor_param: cursor} if cursor else {})
			response, records = self.get(self.path, extra)
			found = next_path.search(response.json())
			following = str(found) if found not in (None, "", False) else None
			if following == cursor:
				following = None
			if records:
				yield Page(self.fetched, records, following or cursor, response)
			if not records or following is None:
				return
			cursor = following

	def linked(self, start_cursor: str | None) -> Iterator[Page]:
		url = self.client.url_for(start_cursor or self.path)
		extra: dict | None = None if start_cursor else self.sized({})
		while True:
			response, records = self.get(url, extra)
			following = next_link(response, url)
			if following is not None and not same_origin(following, url):
				raise PermanentError(
					f"The next-page link points to another host ({urlsplit(following).hostname})"
				)
			if following == url:
				following = None
			if records:
				yield Page(self.fetched, records, following or url, response)
			if not records or following is None:
				return
			url, extra = following, None


def int_cursor(value: str | None, default: int) -> int:
	if value in (None, ""):
		return default
	try:
		return int(str(value))
	except ValueError:
		raise ConfigurationError(f"Saved cursor {value!r} is not a number") from None
