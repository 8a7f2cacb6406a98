"""Helpers for the Frappe-layer tests: a recording HTTP server on 127.0.0.1 and small record factories."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, add_to_date, now_datetime, nowdate
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from integration_hub.api.mapping import load_template

SERVER_MAX_LIFETIME = 300


class QuietRequestHandler(WSGIRequestHandler):
	def log_request(self, code="-", size="-"):
		"""Tests read what the server recorded; a line per request on stderr only hides failures."""


@dataclass
class RecordedRequest:
	method: str
	path: str
	query: str
	headers: dict[str, str]
	body: bytes
	received_at: float

	def json(self):
		return json.loads(self.body) if self.body else None


@dataclass
class RecordingServer:
	"""A real HTTP server on 127.0.0.1 that records every request and answers through ``responder``.

	It shuts itself down after ``lifetime`` seconds even if a test forgets to stop it.
	"""

	responder: Callable[[RecordedRequest], tuple[int, dict, object]] | None = None
	port: int = 0
	lifetime: float = SERVER_MAX_LIFETIME
	requests: list[RecordedRequest] = field(default_factory=list)

	def __post_init__(self):
		self._lock = threading.Lock()
		self._server = make_server(
			"127.0.0.1", self.port, self._app, threaded=True, request_handler=QuietRequestHandler
		)
		self.port = self._server.server_port
		self.url = f"http://127.0.0.1:{self.port}"
		self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
		self._thread.start()
		self._watchdog = threading.Timer(self.lifetime, self.stop)
		self._watchdog.daemon = True
		self._watchdog.start()

	def _app(self, environ, start_response):
		request = Request(environ)
		recorded = RecordedRequest(
			method=request.method,
			path=request.path,
			query=request.query_string.decode(),
			headers=dict(request.headers),
			body=request.get_data(),
			received_at=time.time(),
		)
		with self._lock:
			self.requests.append(recorded)
		status, headers, body = (self.responder or default_responder)(recorded)
		if not isinstance(body, str | bytes):
			body = json.dumps(body)
			headers = {"Content-Type": "application/json", **headers}
		return Response(body, status=status, headers=headers)(environ, start_response)

	def stop(self):
		self._watchdog.cancel()
		self._server.shutdown()
		self._server.server_close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()


def default_responder(request: RecordedRequest) -> tuple[int, dict, object]:
	return 200, {}, {"id": f"remote-{len(request.body)}", "ok": True}


def default_company() -> str:
	return (
		frappe.db.get_single_value("Global Defaults", "default_company")
		or frappe.get_all("Company", limit=1, pluck="name")[0]
	)


def make_customer(name: str = "IH Test Customer") -> str:
	if not frappe.db.exists("Customer", name):
		frappe.get_doc(
			{
				"doctype": "Customer",
				"customer_name": name,
				"customer_group": frappe.get_all(
					"Customer Group", filters={"is_group": 0}, limit=1, pluck="name"
				)[0],
				"territory": frappe.get_all("Territory", filters={"is_group": 0}, limit=1, pluck="name")[0],
			}
		).insert(ignore_permissions=True)
	return name


def make_item(item_code: str = "IH-TEST-ITEM", is_stock_item: int = 0) -> str:
	if not frappe.db.exists("Item", item_code):
		frappe.get_doc(
			{
				"doctype": "Item",
				"item_code": item_code,
				"item_name": item_code,
				"item_group": frappe.get_all("Item Group", filters={"is_group": 0}, limit=1, pluck="name")[0],
				"stock_uom": "Nos",
				"is_stock_item": is_stock_item,
				"valuation_rate": 10,
			}
		).insert(ignore_permissions=True)
	return item_code


def make_warehouse(name: str, company: str | None = None) -> str:
	company = company or default_company()
	abbr = frappe.get_cached_value("Company", company, "abbr")
	full_name = f"{name} - {abbr}"
	if not frappe.db.exists("Warehouse", full_name):
		frappe.get_doc({"doctype": "Warehouse", "warehouse_name": name, "company": company}).insert(
			ignore_permissions=True
		)
	return full_name


def tax_account(company: str) -> str:
	account = frappe.db.get_value("Account", {"company": company, "account_type": "Tax", "is_group": 0})
	if account:
		return account
	parent = frappe.db.get_value("Account", {"company": company, "root_type": "Liability", "is_group": 1})
	return (
		frappe.get_doc(
			{
				"doctype": "Account",
				"account_name": "IH Output Tax",
				"company": company,
				"parent_account": parent,
				"account_type": "Tax",
				"root_type": "Liability",
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


def make_sales_invoice(
	items=(("IH-TEST-ITEM", 2, 50.0),),
	tax_rate: float = 10.0,
	submit: bool = True,
	posting_date: str | None = None,
	customer: str | None = None,
):
	company = default_company()
	invoice = frappe.get_doc(
		{
			"doctype": "Sales Invoice",
			"company": company,
			"customer": customer or make_customer(),
			"set_posting_time": 1 if posting_date else 0,
			"posting_date": posting_date or nowdate(),
			"due_date": add_days(posting_date or nowdate(), 30),
			"currency": frappe.get_cached_value("Company", company, "default_currency"),
			"items": [{"item_code": make_item(code), "qty": qty, "rate": rate} for code, qty, rate in items],
			"taxes": [
				{
					"charge_type": "On Net Total",
					"account_head": tax_account(company),
					"description": "GST",
					"rate": tax_rate,
				}
			]
			if tax_rate
			else [],
		}
	)
	invoice.insert(ignore_permissions=True)
	if submit:
		invoice.submit()
	return invoice


def make_connector(name: str, base_url: str, **values) -> str:
	"""A fresh REST connector aimed at ``base_url``; rows, bindings and alerts of an earlier one of that name go
	too."""
	frappe.db.delete("Sync Log", {"connector": name})
	frappe.db.delete("Integration Binding", {"connector": name})
	frappe.db.delete("Integration Alert", {"connector": name})
	for mapping in frappe.get_all("Mapping", filters={"connector": name}, pluck="name"):
		frappe.delete_doc("Mapping", mapping, force=True, ignore_permissions=True)
	if frappe.db.exists("Connector", name):
		frappe.delete_doc("Connector", name, force=True, ignore_permissions=True)
	doc = frappe.get_doc(
		{
			"doctype": "Connector",
			"connector_name": name,
			"protocol": "REST",
			"base_url": base_url,
			"allow_private_network": 1,
			"connect_timeout": 2,
			"read_timeout": 5,
			"backoff_base_seconds": 1,
			"backoff_max_seconds": 5,
			**values,
		}
	).insert(ignore_permissions=True)
	return doc.name


def make_mapping_from_template(template: str, connector: str, name: str | None = None, **overrides) -> str:
	data = load_template(template)
	name = name or f"{template} {connector}"
	if frappe.db.exists("Mapping", name):
		frappe.delete_doc("Mapping", name, force=True, ignore_permissions=True)
	doc = frappe.get_doc(
		{"doctype": "Mapping", **data["mapping"], "mapping_name": name, "connector": connector, **overrides}
	).insert(ignore_permissions=True)
	return doc.name


def mapping_from_template(
	template: str,
	connector: str,
	name: str,
	fields: dict | None = None,
	links: dict | None = None,
	**overrides,
) -> str:
	"""A mapping from a bundled template with some of its rows changed, as an administrator would edit them:
	``fields`` and ``links`` map a row's target to the values to change on that row."""
	data = load_template(template)["mapping"]
	rows = {
		"fields": [{**row, **(fields or {}).get(row["target"], {})} for row in data.get("fields", [])],
		"links": [{**row, **(links or {}).get(row["target"], {})} for row in data.get("links", [])],
	}
	if frappe.db.exists("Mapping", name):
		frappe.delete_doc("Mapping", name, force=True, ignore_permissions=True)
	doc = frappe.get_doc(
		{"doctype": "Mapping", **data, **rows, "mapping_name": name, "connector": connector, **overrides}
	).insert(ignore_permissions=True)
	return doc.name


def sync_logs_for(reference_doctype: str, reference_name: str) -> list[frappe._dict]:
	return frappe.get_all(
		"Sync Log",
		filters={"reference_doctype": reference_doctype, "reference_name": reference_name},
		fields=["*"],
		order_by="creation asc",
	)


def make_rows_due(connector: str) -> None:
	"""Bring every waiting row of a connector forward in time, as if its backoff had passed."""
	frappe.db.sql(
		"""update `tabSync Log` set next_attempt_at = %s
		where connector = %s and status in ('Queued', 'Failed')""",
		(add_to_date(now_datetime(), seconds=-1), connector),
	)
	frappe.db.commit()


def free_port() -> int:
	"""A loopback port nothing listens on right now."""
	with socket.socket() as sock:
		sock.bind(("127.0.0.1", 0))
		return sock.getsockname()[1]


def run_worker_process(connector: str) -> subprocess.Popen:
	"""Start a delivery worker in a separate OS process, as a real background worker would run."""
	return run_site_function("integration_hub.outbound.outbox.deliver", connector)


def run_site_function(dotted_path: str, *args: str) -> subprocess.Popen:
	"""Call ``dotted_path(*args)`` on this site in a separate OS process, as a background worker would."""
	script = (
		"import frappe, sys\n"
		"frappe.init(site=sys.argv[1], sites_path=sys.argv[2])\n"
		"frappe.connect()\n"
		"print(frappe.get_attr(sys.argv[3])(*sys.argv[4:]))\n"
		"frappe.destroy()\n"
	)
	sites_path = os.path.abspath(frappe.local.sites_path)
	return subprocess.Popen(
		[sys.executable, "-c", script, frappe.local.site, sites_path, dotted_path, *args],
		cwd=sites_path,
		stdout=subprocess.PIPE,
		stderr=subprocess.PIPE,
		text=True,
	)


class SiteServer:
	"""This site served by gunicorn on 127.0.0.1 in its own process, for tests that need real HTTP requests
	through Frappe's WSGI app. ``timeout`` ends it after ``lifetime`` seconds even if a test forgets to."""

	def __init__(self, workers: int = 2, lifetime: int = SERVER_MAX_LIFETIME * 2):
		self.port = free_port()
		self.url = f"http://127.0.0.1:{self.port}"
		self.site = frappe.local.site
		sites_path = os.path.abspath(frappe.local.sites_path)
		self.process = subprocess.Popen(
			[
				"timeout",
				str(lifetime),
				sys.executable,
				"-m",
				"gunicorn",
				"-b",
				f"127.0.0.1:{self.port}",
				"-w",
				str(workers),
				"--timeout",
				"120",
				"frappe.app:application",
			],
			cwd=sites_path,
			stdout=subprocess.DEVNULL,
			stderr=subprocess.PIPE,
		)
		self.wait_until_listening()

	def wait_until_listening(self, seconds: float = 60) -> None:
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			if self.process.poll() is not None:
				raise RuntimeError(f"gunicorn ended: {self.process.stderr.read().decode()[-2000:]}")
			with socket.socket() as sock:
				if sock.connect_ex(("127.0.0.1", self.port)) == 0:
					return
			time.sleep(0.1)
		self.stop()
		raise RuntimeError("gunicorn did not start listening in time")

	def request(self, method: str, path: str, **kwargs):
		"""A request to this site by its name, whatever the address it is served on."""
		import requests

		headers = {"Host": self.site, **kwargs.pop("headers", {})}
		url = path if path.startswith("http") else self.url + path
		return requests.request(method, url, headers=headers, timeout=(2, 120), **kwargs)

	def post(self, path: str, **kwargs):
		return self.request("POST", path, **kwargs)

	def get(self, path: str, **kwargs):
		return self.request("GET", path, **kwargs)

	def stop(self) -> None:
		if self.process.poll() is None:
			self.process.terminate()
			try:
				self.process.wait(timeout=10)
			except subprocess.TimeoutExpired:
				self.process.kill()
				self.process.wait(timeout=10)

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()


class ServedSiteTestCase(FrappeTestCase):
	"""Tests that need real HTTP requests: after ``prepare_site`` (committed) the class serves this site on
	127.0.0.1 as ``cls.site`` and stops it at the end."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.prepare_site()
		frappe.db.commit()
		cls.site = SiteServer()

	@classmethod
	def prepare_site(cls) -> None:
		"""Records the class needs before the site is served."""

	@classmethod
	def tearDownClass(cls):
		cls.site.stop()
		super().tearDownClass()


def api_token(user: str, roles: list[str] | None = None) -> str:
	"""``token key:secret`` for ``user`` (given exactly ``roles`` when named), as an administrator issues it."""
	if roles is not None:
		from integration_hub.integration_hub.doctype.connector.test_connector import make_user

		make_user(user, roles)
	doc = frappe.get_doc("User", user)
	doc.api_key = doc.api_key or frappe.generate_hash(length=15)
	secret = frappe.generate_hash(length=15)
	doc.api_secret = secret
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	return f"token {doc.api_key}:{secret}"


def bench_command(site: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
	"""``bench --site <site> <args>`` as this bench runs it, in a process of its own."""
	return subprocess.run(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", site, *args],
		cwd=os.path.abspath(frappe.local.sites_path),
		capture_output=True,
		text=True,
		timeout=timeout,
		check=False,
	)
