"""The browser tier: the test site served by the bench's own gunicorn on 127.0.0.1, a real RQ worker, a
loopback HTTP server as the remote, and the system's Chromium driven by chromedriver (nothing is downloaded).

Environment: IH_BENCH (the bench folder), IH_SITE (a site with Integration Hub installed, allow_tests set),
IH_ADMIN_PASSWORD (default ``admin``), IH_SCREENSHOTS (where the PNGs go; a new folder when unset),
CHROMIUM and CHROMEDRIVER (default /usr/bin/chromium and /usr/bin/chromedriver).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

BENCH = Path(os.environ.get("IH_BENCH", Path.home() / "frappe-bench"))
SITE = os.environ.get("IH_SITE", "test.integration-hub.localhost")
ADMIN_PASSWORD = os.environ.get("IH_ADMIN_PASSWORD", "admin")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def free_port() -> int:
	with socket.socket() as sock:
		sock.bind(("127.0.0.1", 0))
		return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30, interval: float = 0.5, message: str = "condition"):
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		value = predicate()
		if value:
			return value
		time.sleep(interval)
	raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def stop_process(process: subprocess.Popen) -> None:
	"""Stop a process this tier started, and its children, by its own process group id."""
	if process.poll() is not None:
		return
	os.killpg(process.pid, signal.SIGTERM)
	try:
		process.wait(timeout=15)
	except subprocess.TimeoutExpired:
		os.killpg(process.pid, signal.SIGKILL)
		process.wait(timeout=5)


def frappe_command(*args: str, timeout: float = 120) -> str:
	"""``bench --site SITE …`` as bench runs it, from the sites folder with the bench's Python."""
	result = subprocess.run(
		[str(BENCH / "env/bin/python"), "-m", "frappe.utils.bench_helper", "frappe", "--site", SITE, *args],
		cwd=BENCH / "sites",
		capture_output=True,
		text=True,
		timeout=timeout,
	)
	if result.returncode:
		raise RuntimeError(f"frappe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
	return result.stdout


@dataclass
class Remote:
	"""The outside system: a real HTTP server on 127.0.0.1 that accepts invoices and lists the ones it holds,
	or fails when told to."""

	mode: str = "ok"
	received: list[dict] = field(default_factory=list)
	held: dict[str, dict] = field(default_factory=dict)

	def __post_init__(self):
		self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler)
		self.url = f"http://127.0.0.1:{self._server.server_port}"
		threading.Thread(target=self._server.serve_forever, daemon=True).start()

	def app(self, environ, start_response):
		request = Request(environ)
		if self.mode == "down":
			response = Response(json.dumps({"error": "accounting is down for maintenance"}), status=503)
		elif request.path == "/health":
			response = Response(json.dumps({"ok": True}), status=200)
		elif request.method == "POST" and request.path == "/invoices":
			body = request.get_json(silent=True) or {}
			self.received.append(body)
			invoice = {**body, "id": f"ACC-{body.get('invoice_number')}", "status": "open"}
			self.held[invoice["id"]] = invoice
			response = Response(json.dumps(invoice), status=201)
		elif request.method == "GET" and request.path == "/invoices":
			first, last = request.args.get("issued_from", ""), request.args.get("issued_to", "9999")
			page, size = int(request.args.get("page", 1)), int(request.args.get("per_page", 100))
			listed = [i for _id, i in sorted(self.held.items()) if first <= i.get("issue_date", "") <= last]
			response = Response(json.dumps({"data": listed[(page - 1) * size : page * size]}), status=200)
		else:
			response = Response(json.dumps({"error": "no such endpoint"}), status=404)
		response.content_type = "application/json"
		return response(environ, start_response)

	def stop(self):
		self._server.shutdown()
		self._server.server_close()


class QuietHandler(WSGIRequestHandler):
	def log_request(self, code="-", size="-"):
		"""The test reads what the remote received; request lines would only clutter the output."""


@dataclass
class Desk:
	url: str
	browser_url: str
	api: requests.Session
	screenshots: Path
	step: int = 0

	def call(self, method: str, http: str = "POST", **data):
		response = self.api.request(http, f"{self.url}/api/method/{method}", json=data, timeout=60)
		response.raise_for_status()
		return response.json().get("message")

	def resource(self, http: str, doctype: str, name: str = "", **data):
		path = f"{self.url}/api/resource/{requests.utils.quote(doctype)}"
		if name:
			path += f"/{requests.utils.quote(name)}"
		response = self.api.request(http, path, json=data or None, timeout=60)
		response.raise_for_status()
		return response.json().get("data")


@pytest.fixture(scope="session")
def screenshots() -> Path:
	folder = Path(os.environ.get("IH_SCREENSHOTS") or tempfile.mkdtemp(prefix="ih-browser-screenshots-"))
	folder.mkdir(parents=True, exist_ok=True)
	for old in folder.glob("*.png"):
		old.unlink()
	print(f"\nscreenshots: {folder}")
	return folder


@pytest.fixture(scope="session")
def desk(screenshots) -> Desk:
	"""gunicorn and an RQ worker for the bench, started here and stopped here by their process ids."""
	if not (BENCH / "sites" / SITE).is_dir():
		pytest.fail(f"no site {SITE} in {BENCH}")
	port = free_port()
	logs = screenshots.parent / f"{screenshots.name}-logs"
	logs.mkdir(exist_ok=True)
	env = {**os.environ, "PYTHONUNBUFFERED": "1"}
	gunicorn = subprocess.Popen(
		[
			str(BENCH / "env/bin/gunicorn"),
			"-b",
			f"127.0.0.1:{port}",
			"-w",
			"2",
			"--timeout",
			"120",
			# Frappe's application with /assets and /files served, as `bench serve` and nginx do
			"frappe.app:application_with_statics()",
			"--preload",
		],
		cwd=BENCH / "sites",
		stdout=open(logs / "gunicorn.log", "w"),
		stderr=subprocess.STDOUT,
		start_new_session=True,
		env=env,
	)
	worker = subprocess.Popen(
		[str(BENCH / "env/bin/python"), "-m", "frappe.utils.bench_helper", "frappe", "worker"],
		cwd=BENCH / "sites",
		stdout=open(logs / "worker.log", "w"),
		stderr=subprocess.STDOUT,
		start_new_session=True,
		env=env,
	)
	print(f"gunicorn pid {gunicorn.pid} on 127.0.0.1:{port}, worker pid {worker.pid}, logs in {logs}")
	# Chromium resolves every *.localhost name to the loopback address, so the Host header names the site
	url = f"http://{SITE}:{port}"
	api = requests.Session()
	api.headers["Host"] = f"{SITE}:{port}"
	try:
		base = f"http://127.0.0.1:{port}"
		wait_for(lambda: ping(api, base), timeout=90, message="gunicorn to answer")
		login = api.post(f"{base}/api/method/login", data={"usr": "Administrator", "pwd": ADMIN_PASSWORD})
		login.raise_for_status()
		yield Desk(url=base, browser_url=url, api=api, screenshots=screenshots)
	finally:
		stop_process(worker)
		stop_process(gunicorn)


def ping(session: requests.Session, base: str) -> bool:
	try:
		return session.get(f"{base}/api/method/ping", timeout=5).ok
	except requests.RequestException:
		return False


@pytest.fixture(scope="session")
def browser():
	if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
		pytest.skip("chromium and chromedriver are not installed")
	profile = tempfile.mkdtemp(prefix="ih-chromium-")
	options = webdriver.ChromeOptions()
	options.binary_location = CHROMIUM
	for flag in (
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--window-size=1440,1000",
		f"--user-data-dir={profile}",
	):
		options.add_argument(flag)
	os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
	driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
	driver.set_page_load_timeout(90)
	try:
		yield driver
	finally:
		driver.quit()
		shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def remote():
	server = Remote()
	yield server
	server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	"""A failing step leaves a picture of the screen and its text, next to the step screenshots."""
	outcome = yield
	report = outcome.get_result()
	driver = item.funcargs.get("browser")
	folder = item.funcargs.get("screenshots")
	if report.when == "call" and report.failed and driver and folder:
		path = folder / f"failed-{item.name}.png"
		driver.save_screenshot(str(path))
		report.sections.append(("failure screenshot", f"{path}\nurl: {driver.current_url}"))
