"""Loopback emulations of real list APIs, shared by the pagination and watermark tests."""

from __future__ import annotations

import itertools
from urllib.parse import urlencode

from conftest import LoopbackHTTPServer, RecordedRequest, Reply


def rows(count: int, start: int = 1) -> list[dict]:
	return [{"id": index, "name": f"Row {index}"} for index in range(start, start + count)]


class DrfList:
	"""DRF PageNumberPagination: ``page``/``page_size``, absolute ``next``/``previous`` links with sorted query
	keys (as ``replace_query_param`` builds them), a silent ``max_page_size`` cap, and
	``404 {"detail": "Invalid page."}`` past the last page (an empty list still answers page 1).
	``records_key="data"`` gives the ZKBio Time variant of the same body."""

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
		query.update(page=page, page_size=size)
		return self.server.url(self.path) + "?" + urlencode(sorted(query.items()))

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


class StripeList:
	"""A Stripe list endpoint: newest first (``created`` descending), ``limit`` 1..100, ``starting_after``
	an object id, ``created[gte]``/``created[gt]`` filters, and the body
	``{"object": "list", "has_more": ..., "data": [...]}``."""

	def __init__(self, server: LoopbackHTTPServer, path: str = "/v1/charges") -> None:
		self.server = server
		self.path = path
		self.objects: list[dict] = []
		self.sequence = itertools.count(1)
		server.route(path, self.answer)

	def add(self, created: int, **fields) -> dict:
		number = next(self.sequence)
		created_object = {"id": f"ch_{number:04d}", "object": "charge", "created": created, **fields}
		self.objects.append(created_object)
		return created_object

	def newest_first(self, request: RecordedRequest) -> list[dict]:
		listed = sorted(self.objects, key=lambda item: (item["created"], item["id"]), reverse=True)
		if request.arg("created[gte]") is not None:
			listed = [item for item in listed if item["created"] >= int(request.arg("created[gte]"))]
		if request.arg("created[gt]") is not None:
			listed = [item for item in listed if item["created"] > int(request.arg("created[gt]"))]
		return listed

	def answer(self, request: RecordedRequest) -> Reply:
		limit = int(request.arg("limit", "10"))
		if not 1 <= limit <= 100:
			return self.error(f"Invalid integer: {limit}", "parameter_invalid_integer")
		listed = self.newest_first(request)
		start = 0
		after = request.arg("starting_after")
		if after is not None:
			ids = [item["id"] for item in listed]
			if after not in ids:
				return self.error(f"No such charge: '{after}'", "resource_missing")
			start = ids.index(after) + 1
		data = listed[start : start + limit]
		body = {"object": "list", "url": self.path, "has_more": start + limit < len(listed), "data": data}
		return Reply.json(body)

	@staticmethod
	def error(message: str, code: str) -> Reply:
		return Reply.json({"error": {"type": "invalid_request_error", "code": code, "message": message}}, 400)
