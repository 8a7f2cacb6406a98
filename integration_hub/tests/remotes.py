"""Remote systems the inbound tests pull from: a POS server and an attendance server, served on 127.0.0.1.

Each holds its records in memory, can change them between runs, and answers with the paging shapes real
servers use (page numbers with a total, a next cursor in the body, an RFC 8288 Link header).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs

from integration_hub.tests.utils import RecordedRequest, RecordingServer

GST_RATES = (5, 12, 18)
POS_ITEMS = {f"IH-POS-{number:02d}": GST_RATES[number % 3] for number in range(1, 10)}
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
	return value.quantize(CENT, rounding=ROUND_HALF_UP)


def make_sale(
	store: str, number: int, customer: str | None = None, version: int = 1, currency: str = "INR"
) -> dict:
	"""A sale as a POS keeps it: each line's tax rounded by itself, a tax line per rate, paid in full."""
	lines = []
	for line in range(1 + number % 3):
		sku = list(POS_ITEMS)[(number + line * 4) % len(POS_ITEMS)]
		qty = 1 + (number + line) % 3
		price = Decimal(137 + (number * 7 + line * 13) % 900) / 100 + version - 1
		net = cents(price * qty)
		rate = POS_ITEMS[sku]
		lines.append(
			{
				"sku": sku,
				"qty": qty,
				"price": str(price),
				"tax_rate": rate,
				"tax": str(cents(net * rate / 100)),
			}
		)
	tax_lines = [
		{"rate": rate, "amount": str(sum(Decimal(ln["tax"]) for ln in lines if ln["tax_rate"] == rate))}
		for rate in GST_RATES
		if any(ln["tax_rate"] == rate for ln in lines)
	]
	net_total = sum(cents(Decimal(ln["price"]) * ln["qty"]) for ln in lines)
	tax_total = sum(Decimal(t["amount"]) for t in tax_lines)
	grand_total = net_total + tax_total
	minute = number % 600
	created = datetime(
		2026, 11, 30, 9 + minute // 60, minute % 60, tzinfo=timezone(timedelta(hours=5, minutes=30))
	)
	return {
		"id": f"{store}-{number:05d}",
		"store": store,
		"created_at": created.isoformat(),
		"updated_at": (created + timedelta(days=version - 1)).isoformat(),
		"customer": customer,
		"currency": currency,
		"lines": lines,
		"tax_lines": tax_lines,
		"net_total": str(net_total),
		"tax_total": str(tax_total),
		"grand_total": str(grand_total),
		"payments": [{"method": "Cash", "amount": str(grand_total)}],
	}


@dataclass
class PosServer:
	"""Sales of several stores: ``/stores/<store>/sales`` pages by number, ``/sales-by-cursor`` by a
	next cursor in the body, ``/sales-by-link`` by Link header. ``fail_with`` makes every request answer
	that (status, headers, body) until cleared; ``page_delay`` slows each page down."""

	currency: str = "INR"
	sales: dict[str, list[dict]] = field(default_factory=dict)
	fail_with: tuple | None = None
	page_delay: float = 0.0

	def __post_init__(self):
		self.lock = threading.Lock()
		self.server = RecordingServer(self.respond, lifetime=900)
		self.url = self.server.url

	def add_store(self, store: str, count: int, customer: str | None = None) -> None:
		self.sales[store] = [
			make_sale(store, number, customer, currency=self.currency) for number in range(1, count + 1)
		]

	def change_sale(self, store: str, number: int) -> dict:
		with self.lock:
			sale = self.sales[store][number - 1]
			changed = make_sale(store, number, sale["customer"], version=2, currency=self.currency)
			self.sales[store][number - 1] = changed
			return changed

	def respond(self, request: RecordedRequest):
		if self.fail_with is not None:
			return self.fail_with
		if self.page_delay:
			time.sleep(self.page_delay)
		parts = request.path.strip("/").split("/")
		if len(parts) != 3 or parts[0] != "stores" or parts[1] not in self.sales:
			return 404, {}, {"detail": "Not found."}
		query = {key: values[-1] for key, values in parse_qs(request.query).items()}
		since = datetime.fromisoformat(query["updated_since"]) if query.get("updated_since") else None
		with self.lock:
			sales = [
				s
				for s in self.sales[parts[1]]
				if since is None or datetime.fromisoformat(s["updated_at"]) >= since
			]
		return {
			"sales": self.by_page,
			"sales-by-cursor": self.by_cursor,
			"sales-by-link": self.by_link,
		}.get(parts[2], lambda *_: (404, {}, {"detail": "Not found."}))(sales, query, request)

	def by_page(self, sales, query, _request):
		page, size = int(query.get("page", 1)), int(query.get("per_page", 100))
		return 200, {}, {"data": sales[(page - 1) * size : page * size], "total": len(sales)}

	def by_cursor(self, sales, query, _request):
		start, size = int(query.get("cursor") or 0), int(query.get("limit", 100))
		following = start + size if start + size < len(sales) else None
		return 200, {}, {"data": sales[start : start + size], "next_cursor": following and str(following)}

	def by_link(self, sales, query, request):
		start, size = int(query.get("start") or 0), int(query.get("limit", 100))
		headers = {}
		if start + size < len(sales):
			headers["Link"] = f'<{self.url}{request.path}?start={start + size}&limit={size}>; rel="next"'
		return 200, headers, {"data": sales[start : start + size]}

	def stop(self):
		self.server.stop()


@dataclass
class AttendanceServer:
	"""Punches as a ZKBio Time-like server lists them: page numbers, ``{"count", "next", "data"}``, naive device
	times, and DRF's ``404 {"detail": "Invalid page."}`` for a page past the end."""

	punches: list[dict] = field(default_factory=list)
	username: str = ""
	password: str = ""
	"""With a username, every list call needs ``Authorization: JWT <token>`` from ``/jwt-api-token-auth/``."""

	def __post_init__(self):
		self.tokens: set[str] = set()
		self.logins = 0
		self.server = RecordingServer(self.respond, lifetime=900)
		self.url = self.server.url

	def log_in(self, request: RecordedRequest):
		body = request.json() or {}
		if body.get("username") != self.username or body.get("password") != self.password:
			return 400, {}, {"non_field_errors": ["Unable to log in with provided credentials."]}
		self.logins += 1
		token = f"jwt-{self.logins}-{time.monotonic_ns()}"
		self.tokens.add(token)
		return 200, {}, {"token": token}

	def expire_tokens(self) -> None:
		self.tokens.clear()

	def add(
		self, punch_id: int, emp_code: str, punch_time: str, state: str = "0", upload_time: str = ""
	) -> dict:
		punch = {
			"id": punch_id,
			"emp_code": emp_code,
			"punch_time": punch_time,
			"punch_state": state,
			"terminal_sn": "CQZ7232460",
			"upload_time": upload_time or punch_time,
		}
		self.punches.append(punch)
		return punch

	def respond(self, request: RecordedRequest):
		if request.path == "/jwt-api-token-auth/" and request.method == "POST":
			return self.log_in(request)
		if self.username and request.headers.get("Authorization", "").removeprefix("JWT ") not in self.tokens:
			return 401, {}, {"detail": "Authentication credentials were not provided."}
		if request.path != "/iclock/api/transactions/":
			return 404, {}, {"detail": "Not found."}
		query = {key: values[-1] for key, values in parse_qs(request.query).items()}
		since = query.get("upload_time__gte", "")
		punches = sorted(
			(p for p in self.punches if p["upload_time"] >= since), key=lambda p: p["upload_time"]
		)
		page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
		chunk = punches[(page - 1) * size : page * size]
		if page > 1 and not chunk:
			return 404, {}, {"detail": "Invalid page."}
		following = (
			f"{self.url}{request.path}?page={page + 1}&page_size={size}"
			if page * size < len(punches)
			else None
		)
		return 200, {}, {"count": len(punches), "next": following, "previous": None, "data": chunk}

	def stop(self):
		self.server.stop()


@dataclass
class LedgerServer:
	"""An accounting system's invoices: ``POST /invoices`` creates one (an Idempotency-Key it has seen answers
	with the invoice made for it, while that invoice exists), ``POST /invoices/<id>/void`` voids one, and
	``GET /invoices?issued_from=&issued_to=&page=&per_page=`` lists a period, page by page, with a total.
	``list_answer`` replaces the list's answer (an error, an HTML page) until cleared."""

	invoices: dict[str, dict] = field(default_factory=dict)
	keys: dict[str, str] = field(default_factory=dict)
	list_answer: tuple | None = None
	max_days: int = 31

	def __post_init__(self):
		self.lock = threading.Lock()
		self.numbers = iter(range(1, 10**9))
		self.server = RecordingServer(self.respond, lifetime=1800)
		self.url = self.server.url

	def respond(self, request: RecordedRequest):
		parts = request.path.strip("/").split("/")
		if parts[0] != "invoices":
			return 404, {}, {"error": "not found"}
		if request.method == "GET" and len(parts) == 1:
			return self.list_invoices(request)
		if request.method == "POST" and len(parts) == 1:
			return self.create(json.loads(request.body), request.headers.get("Idempotency-Key"))
		if request.method == "POST" and len(parts) == 3 and parts[2] == "void":
			with self.lock:
				if parts[1] not in self.invoices:
					return 404, {}, {"error": f"no invoice {parts[1]}"}
				self.invoices[parts[1]]["status"] = "void"
				return 200, {}, self.invoices[parts[1]]
		return 405, {}, {"error": "method not allowed"}

	def create(self, body: dict, key: str | None) -> tuple:
		with self.lock:
			if key and self.keys.get(key) in self.invoices:
				return 200, {}, self.invoices[self.keys[key]]
			invoice = self.add(body)
			if key:
				self.keys[key] = invoice["id"]
			return 201, {}, invoice

	def add(self, body: dict) -> dict:
		invoice = {**body, "id": f"inv_{next(self.numbers):06d}", "status": "open"}
		self.invoices[invoice["id"]] = invoice
		return invoice

	def list_invoices(self, request: RecordedRequest) -> tuple:
		if self.list_answer is not None:
			return self.list_answer
		query = {key: values[-1] for key, values in parse_qs(request.query).items()}
		first, last = query.get("issued_from", ""), query.get("issued_to", "9999")
		if (
			first
			and last
			and (
				last < first
				or (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days > self.max_days
			)
		):
			return (
				422,
				{},
				{"error": f"issued_from..issued_to must be a range of at most {self.max_days} days"},
			)
		page, size = int(query.get("page", 1)), int(query.get("per_page", 100))
		with self.lock:
			listed = [
				invoice
				for _id, invoice in sorted(self.invoices.items())
				if first <= invoice.get("issue_date", "") <= last
			]
		return 200, {}, {"data": listed[(page - 1) * size : page * size], "total": len(listed)}

	def stop(self):
		self.server.stop()
