"""An Integration Manager sets up an integration in the Desk and watches invoices go out, fail, die and come
back through a bulk retry; a plain user sees none of it. Each step saves a screenshot."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from conftest import frappe_command, wait_for
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

RUN = time.strftime("%H%M%S")
MANAGER = "ih-browser-manager@example.com"
PLAIN = "ih-browser-plain@example.com"
PASSWORD = "Browser-Test-Pass-7391!"
SECRET = f"browser-secret-{RUN}-5521"
CONNECTOR = f"Browser Books {RUN}"
MAPPING = f"Browser Invoices {RUN}"


class Screen:
	"""The browser, with the few moves a person makes in the Desk and a screenshot per step."""

	def __init__(self, driver, desk):
		self.driver = driver
		self.desk = desk

	def shot(self, name: str) -> None:
		self.desk.step += 1
		path = self.desk.screenshots / f"{self.desk.step:02d}-{name}.png"
		time.sleep(0.5)  # let transitions and alerts settle so the picture shows what a person sees
		self.driver.save_screenshot(str(path))
		print(f"screenshot {path}")

	def open(self, path: str) -> None:
		self.driver.get(self.desk.browser_url + path)
		self.settle()

	def settle(self) -> None:
		wait_for(
			lambda: self.js("return document.readyState === 'complete' && !!window.frappe && !!frappe.boot"),
			timeout=60,
			message="the page to load",
		)
		time.sleep(1)

	def js(self, script: str, *args):
		return self.driver.execute_script(script, *args)

	def find(self, css: str, timeout: float = 30, text: str | None = None):
		def visible():
			for element in self.driver.find_elements(By.CSS_SELECTOR, css):
				try:
					if element.is_displayed() and (text is None or text in element.text):
						return element
				except WebDriverException:
					continue
			return None

		return wait_for(visible, timeout=timeout, message=f"{css} {text or ''}".strip())

	def click(self, css: str, text: str | None = None, timeout: float = 30) -> None:
		element = self.find(css, timeout=timeout, text=text)
		self.js("arguments[0].scrollIntoView({block: 'center'});", element)
		element.click()

	def type(self, css: str, value: str) -> None:
		element = self.find(css)
		element.clear()
		element.send_keys(value)

	def cards_loaded(self) -> None:
		wait_for(
			lambda: self.js(
				"const cards = [...document.querySelectorAll('.number-widget-box')];"
				"return cards.length === 5 && cards.every(c => !c.innerText.includes('Loading'))"
			),
			timeout=60,
			message="the workspace's number cards",
		)

	def page_text(self) -> str:
		return self.js("return document.body.innerText")

	def login(self, user: str, password: str) -> None:
		self.driver.delete_all_cookies()
		self.open("/login")
		self.type("#login_email", user)
		self.type("#login_password", password)
		self.click(".btn-login")
		wait_for(lambda: "/app" in self.driver.current_url, timeout=60, message="the Desk after login")
		self.settle()


def sync_status(desk, invoice: str) -> dict:
	rows = desk.call(
		"frappe.client.get_list",
		doctype="Sync Log",
		filters={"reference_name": invoice, "connector": CONNECTOR},
		fields=["name", "status", "attempts", "error", "external_id"],
	)
	return rows[0] if rows else {}


def first_name(desk, doctype: str, filters: dict) -> str:
	rows = desk.call(
		"frappe.client.get_list", doctype=doctype, filters=filters, fields=["name"], limit_page_length=1
	)
	return rows[0]["name"]


def ensure_user(desk, email: str, roles: list[str]) -> None:
	values = {
		"email": email,
		"first_name": email.split("@")[0],
		"send_welcome_email": 0,
		"enabled": 1,
		"new_password": PASSWORD,
		"roles": [{"role": role} for role in roles],
	}
	exists = desk.call("frappe.client.get_count", doctype="User", filters={"name": email})
	if exists:
		desk.resource("PUT", "User", email, **values)
	else:
		desk.resource("POST", "User", **values)


def draft_invoice(desk, world: dict, submit: bool = False) -> str:
	doc = desk.resource(
		"POST",
		"Sales Invoice",
		company=world["company"],
		customer=world["customer"],
		currency=world["currency"],
		due_date=time.strftime("%Y-%m-%d", time.localtime(time.time() + 30 * 86400)),
		items=[{"item_code": world["item"], "qty": 2, "rate": 50}],
		docstatus=1 if submit else 0,
	)
	return doc["name"]


def disable_browser_mappings(desk) -> None:
	"""Mappings this test made (in this run or an earlier one) stop sending, so runs do not disturb each other."""
	for row in desk.call(
		"frappe.client.get_list",
		doctype="Mapping",
		filters={"mapping_name": ["like", "Browser Invoices %"], "enabled": 1},
		fields=["name"],
		limit_page_length=0,
	):
		desk.resource("PUT", "Mapping", row["name"], enabled=0)


@pytest.fixture(scope="module")
def world(desk):
	"""What the story needs besides the Desk: two users, a customer, an item."""
	disable_browser_mappings(desk)
	ensure_user(desk, MANAGER, ["Integration Manager", "Accounts User", "Accounts Manager"])
	ensure_user(desk, PLAIN, ["Accounts User"])
	company = first_name(desk, "Company", {})
	currency = desk.call(
		"frappe.client.get_value", doctype="Company", filters=company, fieldname="default_currency"
	)["default_currency"]
	customer = "IH Browser Customer"
	if not desk.call("frappe.client.get_count", doctype="Customer", filters={"name": customer}):
		desk.resource(
			"POST",
			"Customer",
			customer_name=customer,
			customer_group=first_name(desk, "Customer Group", {"is_group": 0}),
			territory=first_name(desk, "Territory", {"is_group": 0}),
		)
	item = "IH-BROWSER-ITEM"
	if not desk.call("frappe.client.get_count", doctype="Item", filters={"name": item}):
		desk.resource(
			"POST",
			"Item",
			item_code=item,
			item_name=item,
			item_group=first_name(desk, "Item Group", {"is_group": 0}),
			stock_uom="Nos",
			is_stock_item=0,
		)
	yield {"company": company, "currency": currency, "customer": customer, "item": item}
	disable_browser_mappings(desk)


def test_an_integration_manager_sets_up_watches_and_heals_an_integration(
	browser, desk, remote, world, screenshots
):
	screen = Screen(browser, desk)

	screen.login(MANAGER, PASSWORD)
	screen.open("/app/integration-hub")
	screen.cards_loaded()
	screen.shot("workspace-before")

	# New Integration, step 1: the connector
	screen.click(".shortcut-widget-box", text="New Integration")
	screen.find(".ih-setup-title", text="Connector")
	screen.type('input[data-fieldname="connector_name"]', CONNECTOR)
	screen.type('input[data-fieldname="base_url"]', remote.url)
	screen.type('input[data-fieldname="health_check_path"]', "/health")
	screen.click('input[data-fieldname="allow_private_network"]')
	Select(screen.find('select[data-fieldname="auth_type"]')).select_by_value("Bearer Token")
	screen.type('input[data-fieldname="secret"]', SECRET)
	screen.shot("setup-connector")
	screen.click(".ih-step-next")

	# step 2: Test Connection against the loopback remote: the green message
	screen.find(".ih-setup-title", text="Test the connection")
	screen.click(".ih-test-connection")
	message = screen.find(".ih-setup-message.alert-success", timeout=60)
	assert "HTTP 200" in message.text
	screen.shot("setup-test-connection-green")
	screen.click(".ih-step-next")

	# step 3: the Sales Invoice to Accounting template
	screen.find(".ih-setup-title", text="Choose")
	wait_for(
		lambda: screen.js("return $('select[data-fieldname=template] option').length > 1"),
		message="templates",
	)
	Select(screen.find('select[data-fieldname="template"]')).select_by_value("sales_invoice_to_accounting")
	screen.type('input[data-fieldname="mapping_name"]', MAPPING)
	screen.shot("setup-template")
	screen.click(".ih-step-next")

	# step 4: the field rows, as the template made them
	screen.find(".ih-setup-title", text="Field rows")
	screen.find(".ih-setup-fields .grid-row", timeout=30)
	screen.shot("setup-field-rows")
	screen.click(".ih-step-next")

	# step 5: Preview an invoice
	preview_invoice = draft_invoice(desk, world)
	screen.find(".ih-setup-title", text="Preview")
	screen.type('input[data-fieldname="docname"]', preview_invoice)
	screen.find('input[data-fieldname="docname"]').send_keys(Keys.ESCAPE)  # close the suggestions
	time.sleep(1)
	screen.click(".ih-preview")
	result = screen.find(".ih-preview-result", timeout=60)
	assert preview_invoice in result.text and "/invoices" in result.text
	assert SECRET not in result.text
	screen.shot("setup-preview")
	screen.click(".ih-step-next")

	# step 6: enable
	screen.find(".ih-setup-title", text="Enable")
	screen.click(".ih-enable")
	screen.find(".ih-setup-message.alert-success", timeout=30)
	screen.shot("setup-enabled")
	mapping = desk.call("frappe.client.get_value", doctype="Mapping", filters=MAPPING, fieldname="enabled")
	assert mapping["enabled"] == 1

	# retries short enough for a test: two attempts, a second of backoff
	desk.resource(
		"PUT", "Connector", CONNECTOR, max_attempts=2, backoff_base_seconds=1, backoff_max_seconds=2
	)

	# the Connector form: health, Test Connection, no secret on the page
	screen.open(f"/app/connector/{quote(CONNECTOR)}")
	screen.find(".ih-connector-health", timeout=30)
	screen.click(".btn", text="Test Connection")
	screen.find(".modal.show .msgprint", text="HTTP 200", timeout=60)
	screen.shot("connector-test-connection")
	screen.click(".modal.show .btn-modal-close")
	screen.settle()
	screen.find(".ih-connector-health", text="Healthy", timeout=30)
	assert SECRET not in browser.page_source
	screen.shot("connector-healthy")

	# submit a Sales Invoice in the Desk; its Sync Log row turns Success
	invoice = draft_invoice(desk, world)
	screen.open(f"/app/sales-invoice/{invoice}")
	wait_for(
		lambda: screen.js("return !!(window.cur_frm && cur_frm.doc.name === arguments[0])", invoice),
		timeout=60,
		message="the invoice form",
	)
	screen.settle()
	if screen.js("return cur_frm.is_dirty()"):  # ERPNext's form scripts fill in values on opening a draft
		screen.click(".primary-action", text="Save")
		wait_for(lambda: not screen.js("return cur_frm.is_dirty()"), timeout=60, message="the draft to save")
		screen.settle()
	screen.click(".primary-action", text="Submit")
	screen.click(".modal.show .btn-primary", text="Yes")
	wait_for(lambda: screen.js("return cur_frm && cur_frm.doc.docstatus === 1"), timeout=60, message="submit")
	screen.shot("invoice-submitted")
	wait_for(lambda: sync_status(desk, invoice).get("status") == "Success", timeout=90, message="Success")
	assert any(body.get("invoice_number") == invoice for body in remote.received)
	screen.open(f"/app/sync-log?reference_name={invoice}")
	screen.find(".list-row-container .indicator-pill", text="Success", timeout=30)
	screen.shot("sync-log-success")
	screen.open(f"/app/sync-log/{sync_status(desk, invoice)['name']}")
	screen.find(".ih-body-request pre", timeout=30)
	screen.find(".ih-remote-link", text=f"ACC-{invoice}")
	screen.shot("sync-log-readable-request")

	# make the remote fail: two invoices go Failed, then Dead with the reason
	remote.mode = "down"
	failing = [draft_invoice(desk, world, submit=True) for _ in range(2)]
	for name in failing:
		wait_for(
			lambda name=name: sync_status(desk, name).get("status") == "Failed", timeout=90, message="Failed"
		)
	screen.open(f"/app/sync-log?connector={quote(CONNECTOR)}")
	screen.find(".list-row-container .indicator-pill", text="Failed", timeout=30)
	screen.shot("sync-log-failed")
	time.sleep(2.5)  # the second attempt's backoff (at most 2 s) passes
	frappe_command("execute", "integration_hub.outbound.outbox.sweep")  # the scheduler's minute tick
	for name in failing:
		wait_for(
			lambda name=name: sync_status(desk, name).get("status") == "Dead", timeout=90, message="Dead"
		)
	dead = sync_status(desk, failing[0])
	assert "503" in dead["error"] and "maintenance" in dead["error"]
	screen.open(f"/app/sync-log/{dead['name']}")
	screen.find(".form-message", text="maintenance", timeout=30)
	screen.shot("sync-log-dead-with-reason")

	# heal the remote, then bulk Retry the dead rows from the list: one request for all of them
	remote.mode = "ok"
	screen.open(f"/app/sync-log?connector={quote(CONNECTOR)}&status=Dead")
	wait_for(
		lambda: len(browser.find_elements(By.CSS_SELECTOR, ".list-row-container")) == 2, message="2 rows"
	)
	screen.js(
		"""window.ih_retry_calls = [];
		const call = frappe.call;
		frappe.call = function (options) {
			if (options && options.method === 'integration_hub.api.sync_log.retry') {
				window.ih_retry_calls.push(options.args.names.length);
			}
			return call.apply(this, arguments);
		};"""
	)
	screen.click(".list-header-checkbox, .list-check-all")
	screen.click(".actions-btn-group button")
	screen.shot("sync-log-bulk-retry-menu")
	screen.click(".actions-btn-group .dropdown-item", text="Retry")
	screen.find(".alert-message, .desk-alert", text="Rows queued again", timeout=30)
	assert screen.js("return window.ih_retry_calls") == [2]
	for name in failing:
		wait_for(
			lambda name=name: sync_status(desk, name).get("status") == "Success", timeout=90, message="healed"
		)
	screen.open(f"/app/sync-log?connector={quote(CONNECTOR)}")
	list_text = wait_for(
		lambda: (
			(text := screen.js("return document.querySelector('.frappe-list .result')?.innerText || ''"))
			and text.count("Success") >= 3
			and text
		),
		timeout=30,
		message="three Success rows in the list",
	)
	assert "Dead" not in list_text and "Failed" not in list_text, list_text
	screen.shot("sync-log-all-success")

	# the workspace now counts what happened
	screen.open("/app/integration-hub")
	screen.cards_loaded()
	delivered = wait_for(
		lambda: screen.js(
			"const card = [...document.querySelectorAll('.number-widget-box')]"
			".find(e => e.innerText.toLowerCase().includes('delivered in the last 24 h'));"
			"return card && parseInt(card.innerText.split('\\n').map(l => l.trim()).find(l => /^[0-9,]+$/.test(l)))"
		),
		timeout=60,
		message="the Delivered card's number",
	)
	assert delivered >= 3
	screen.shot("workspace-after-cards")
	screen.js("document.querySelector('.widget.dashboard-widget-box')?.scrollIntoView()")
	# charts draw once scrolled into view, then grow their bars
	wait_for(
		lambda: screen.js(
			"return [...document.querySelectorAll('.widget.dashboard-widget-box svg rect')]"
			".some(r => parseFloat(r.getAttribute('height') || 0) > 2)"
		),
		timeout=30,
		message="the charts' bars",
	)
	time.sleep(1.5)
	screen.shot("workspace-after-charts")


def test_a_manager_reconciles_and_resends_what_the_remote_lost(browser, desk, remote, world, screenshots):
	screen = Screen(browser, desk)
	desk.resource("PUT", "Mapping", MAPPING, condition=f"doc.customer == '{world['customer']}'")
	lost = next(body["invoice_number"] for body in remote.received)
	del remote.held[f"ACC-{lost}"]

	screen.login(MANAGER, PASSWORD)
	screen.open(f"/app/mapping/{quote(MAPPING)}")
	screen.click(".btn", text="Reconcile")
	screen.find(".modal.show .frappe-control[data-fieldname='from_date']")
	screen.js(
		"cur_dialog.set_values({from_date: frappe.datetime.get_today(), to_date: frappe.datetime.get_today()})"
	)
	screen.shot("reconcile-dialog")
	screen.click(".modal.show .btn-primary", text="Reconcile")
	wait_for(
		lambda: screen.js("return cur_frm && cur_frm.doctype === 'Reconciliation' && cur_frm.doc.name"),
		message="the Reconciliation form",
	)
	run = screen.js("return cur_frm.doc.name")
	wait_until_completed(desk, run)
	screen.open(f"/app/reconciliation/{run}")
	screen.find(".form-message", text="open differences", timeout=30)
	screen.shot("reconciliation-differences-found")

	missing = first_name(desk, "Reconciliation Difference", {"reconciliation": run, "reference_name": lost})
	screen.open(f"/app/reconciliation-difference/{missing}")
	screen.find(".frappe-control[data-fieldname='comparison_html'] table", timeout=30)
	assert "Missing at Remote" in screen.page_text()
	screen.shot("reconciliation-difference-side-by-side")
	screen.click(".btn", text="Re-send")
	screen.find(".alert-message, .desk-alert", text="Queued in the outbox", timeout=30)
	wait_for(lambda: f"ACC-{lost}" in remote.held, timeout=90, message="the lost invoice sent again")
	screen.shot("reconciliation-difference-resent")

	again = desk.call(
		"integration_hub.api.reconciliation.start",
		mapping=MAPPING,
		from_date=time.strftime("%Y-%m-%d"),
		to_date=time.strftime("%Y-%m-%d"),
	)
	wait_until_completed(desk, again)
	assert not desk.call(
		"frappe.client.get_count",
		doctype="Reconciliation Difference",
		filters={"reconciliation": again, "reference_name": lost},
	)
	screen.open(f"/app/reconciliation/{again}")
	screen.find(".form-message", text="matched", timeout=30)
	screen.shot("reconciliation-second-run")


def wait_until_completed(desk, reconciliation: str) -> None:
	"""The run happens in the real RQ worker; wait for it to finish."""
	wait_for(
		lambda: (
			desk.call(
				"frappe.client.get_value",
				doctype="Reconciliation",
				filters=reconciliation,
				fieldname="status",
			)["status"]
			== "Completed"
		),
		timeout=120,
		message=f"reconciliation {reconciliation} to complete in the worker",
	)


def test_a_plain_user_sees_no_connector_secrets_and_no_admin_buttons(browser, desk, world, screenshots):
	screen = Screen(browser, desk)
	screen.login(PLAIN, PASSWORD)
	screen.open(f"/app/connector/{quote(CONNECTOR)}")
	time.sleep(2)
	text = screen.page_text()
	assert "Test Connection" not in text and "Pause" not in text
	assert SECRET not in browser.page_source
	screen.shot("plain-user-connector")
	refused = browser.execute_async_script(
		"""const done = arguments[arguments.length - 1];
		frappe.call({method: 'integration_hub.api.connector.connector_health', args: {connector: arguments[0]},
			error: () => done('refused'), callback: (r) => done(JSON.stringify(r.message || null))})
			.fail(() => done('refused'));""",
		CONNECTOR,
	)
	assert refused == "refused"
	screen.open("/app/sync-log")
	time.sleep(2)
	assert "Retry" not in screen.page_text()
	screen.shot("plain-user-sync-log")
