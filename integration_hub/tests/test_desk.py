"""What the Desk shows and does: workspace numbers and charts, connector health with Pause/Resume, readable
Sync Log bodies, bulk retry in one call, and per-row messages on Mappings."""

from __future__ import annotations

import json
from unittest.mock import patch

import frappe
from frappe.desk.doctype.number_card.number_card import get_result
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from integration_hub.api.connector import connector_health, pause_connector, resume_connector, test_connection
from integration_hub.api.mapping import check_rows, create_from_template
from integration_hub.api.sync_log import readable_bodies, retry
from integration_hub.connectors import record_circuit_outcome
from integration_hub.dashboards import outcomes_by_connector, outcomes_over_time, window
from integration_hub.integration_hub.doctype.connector.test_connector import make_user
from integration_hub.mappings import clear_outbound_index
from integration_hub.tests.utils import RecordingServer, make_connector

CONNECTOR = "IH Desk"
SECRET = "desk-secret-token-93481"


def insert_rows(connector: str, rows: list[dict]) -> list[str]:
	"""Sync Log rows written straight to the table, as the outbox writes them, with chosen times."""
	now = now_datetime()
	names = []
	values = []
	for row in rows:
		name = frappe.generate_hash(length=10)
		names.append(name)
		modified = row.get("modified", now)
		values.append(
			(
				name,
				modified,
				modified,
				"Administrator",
				"Administrator",
				row.get("status", "Dead"),
				row.get("direction", "Outbound"),
				connector,
				row.get("attempts", 8),
				row.get("error", "HTTP 400"),
			)
		)
	frappe.db.bulk_insert(
		"Sync Log",
		[
			"name",
			"creation",
			"modified",
			"owner",
			"modified_by",
			"status",
			"direction",
			"connector",
			"attempts",
			"error",
		],
		values,
	)
	return names


class StatementCounter:
	"""Records the SQL statements sent while it is active."""

	def __init__(self):
		self.statements: list[tuple[str, object]] = []

	@property
	def count(self) -> int:
		return len(self.statements)

	def __enter__(self):
		original = frappe.db.sql

		def counting(query, values=(), *args, **kwargs):
			self.statements.append((str(query), values))
			return original(query, values, *args, **kwargs)

		self._patch = patch.object(frappe.db, "sql", counting)
		self._patch.start()
		return self

	def __exit__(self, *exc):
		self._patch.stop()


class DeskTestCase(FrappeTestCase):
	def setUp(self):
		self.connector = make_connector(
			CONNECTOR, "https://api.example.com", auth_type="Bearer Token", bearer_token=SECRET
		)

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_outbound_index()


class TestBulkRetry(DeskTestCase):
	def test_retrying_100_dead_rows_is_one_call_whose_statements_do_not_grow_with_the_rows(self):
		few = insert_rows(self.connector, [{}] * 2)
		many = insert_rows(self.connector, [{}] * 100)
		with StatementCounter() as for_few:
			self.assertEqual(retry(few), {"queued": 2})
		with StatementCounter() as for_many:
			self.assertEqual(retry(json.dumps(many)), {"queued": 100})
		self.assertLessEqual(for_many.count, for_few.count, "a statement per row: bulk retry does not scale")
		self.assertLess(for_many.count, 10)
		statuses = frappe.get_all(
			"Sync Log", filters={"name": ("in", many)}, fields=["status", "attempts"], distinct=True
		)
		self.assertEqual([(row.status, row.attempts) for row in statuses], [("Queued", 0)])

	def test_a_user_who_cannot_see_a_row_cannot_retry_it_in_a_batch(self):
		names = insert_rows(self.connector, [{}] * 3)
		frappe.set_user(make_user("ih-desk-plain@example.com", ["Accounts User"]))
		with self.assertRaises(frappe.PermissionError):
			retry(names)


class TestWorkspaceNumbers(DeskTestCase):
	def card_value(self, card: str, **dynamic) -> int:
		doc = frappe.get_doc("Number Card", card)
		filters = json.loads(doc.filters_json)
		for field, value in dynamic.items():
			filters.append([doc.document_type, field, ">=", str(value)])
		return int(get_result(doc.as_json(), json.dumps(filters)))

	def test_cards_count_what_the_sync_log_holds(self):
		day_ago = add_to_date(now_datetime(), hours=-24)
		before = {
			card: self.card_value(card)
			for card in ("Failed and Retrying", "Dead Rows", "Rows Waiting", "Connectors Not Healthy")
		}
		delivered_before = self.card_value("Delivered in the Last 24 h", modified=day_ago)
		insert_rows(
			self.connector,
			[{"status": "Success"}] * 4
			+ [{"status": "Success", "modified": add_to_date(now_datetime(), days=-2)}] * 3
			+ [{"status": "Success", "direction": "Inbound"}] * 2
			+ [{"status": "Failed"}] * 5
			+ [{"status": "Dead"}] * 6
			+ [{"status": "Queued"}] * 7,
		)
		record_circuit_outcome(self.connector, success=False, error="HTTP 503")
		self.assertEqual(
			self.card_value("Delivered in the Last 24 h", modified=day_ago) - delivered_before, 4
		)
		self.assertEqual(self.card_value("Failed and Retrying") - before["Failed and Retrying"], 5)
		self.assertEqual(self.card_value("Dead Rows") - before["Dead Rows"], 6)
		self.assertEqual(self.card_value("Rows Waiting") - before["Rows Waiting"], 12)
		self.assertEqual(self.card_value("Connectors Not Healthy") - before["Connectors Not Healthy"], 1)

	def test_charts_split_the_window_by_status_direction_and_connector(self):
		frappe.db.delete("Sync Log", {"modified": (">=", add_to_date(now_datetime(), days=-8))})
		insert_rows(
			self.connector,
			[{"status": "Success"}] * 3
			+ [{"status": "Dead", "modified": add_to_date(now_datetime(), days=-2)}] * 2
			+ [{"status": "Success", "direction": "Inbound"}]
			+ [{"status": "Success", "modified": add_to_date(now_datetime(), days=-30)}] * 9,
		)
		start, end = window(frappe._dict(timespan="Last Week"))
		by_status = outcomes_over_time("status", start, end)
		totals = {dataset["name"]: sum(dataset["values"]) for dataset in by_status["datasets"]}
		self.assertEqual(
			totals,
			{"Success": 4, "Queued": 0, "Running": 0, "Failed": 0, "Dead": 2, "Skipped": 0, "Cancelled": 0},
		)
		self.assertEqual(
			sum(by_status["datasets"][0]["values"][-1:]), 4, "today's rows belong to the last day"
		)
		by_direction = outcomes_over_time("direction", start, end)
		self.assertEqual(
			{dataset["name"]: sum(dataset["values"]) for dataset in by_direction["datasets"]},
			{"Outbound": 5, "Inbound": 1},
		)
		by_connector = outcomes_by_connector(start, end)
		self.assertEqual(by_connector["labels"], [self.connector])
		self.assertEqual(
			{
				dataset["name"]: dataset["values"]
				for dataset in by_connector["datasets"]
				if dataset["values"] != [0]
			},
			{"Success": [4], "Dead": [2]},
		)
		with self.assertRaises(frappe.ValidationError):
			outcomes_over_time("error", start, end)

	def test_connectors_whose_names_share_a_checksum_are_still_counted_apart(self):
		frappe.db.delete("Sync Log", {"modified": (">=", add_to_date(now_datetime(), days=-8))})
		twins = ("IH Collide 89998", "IH Collide 27042200")  # the same CRC-32
		insert_rows(twins[0], [{"status": "Success"}] * 3)
		insert_rows(twins[1], [{"status": "Success"}] * 2)
		by_connector = outcomes_by_connector(*window(frappe._dict(timespan="Last Week")))
		self.assertEqual(by_connector["labels"], list(twins))
		success = next(d for d in by_connector["datasets"] if d["name"] == "Success")
		self.assertEqual(success["values"], [3, 2])

	def test_card_and_chart_queries_read_an_index(self):
		"""The statements behind the cards, the charts and the Connector form's counts read an index, never
		the whole table, and the charts' grouped window is read from the index alone."""
		insert_rows(self.connector, [{"status": "Success"}] * 50 + [{"status": "Dead"}] * 50)
		frappe.db.sql("analyze table `tabSync Log`")
		since = str(add_to_date(now_datetime(), hours=-24))
		start, end = window(frappe._dict(timespan="Last Week"))
		with StatementCounter() as cards:
			for card in ("Failed and Retrying", "Dead Rows", "Rows Waiting"):
				self.card_value(card)
			self.card_value("Delivered in the Last 24 h", modified=since)
			connector_health(self.connector)
		with StatementCounter() as charts:
			outcomes_over_time("status", start, end)
			outcomes_over_time("direction", start, end)
			outcomes_by_connector(start, end)
		for counter, index_only in ((cards, False), (charts, True)):
			queries = [q for q in counter.statements if "`tabSync Log`" in q[0] and "count(" in q[0].lower()]
			self.assertTrue(queries)
			for query, values in queries:
				with self.subTest(query=query):
					plan = frappe.db.sql(f"explain {query}", values, as_dict=True)[0]
					self.assertNotEqual(plan.type, "ALL", plan)
					self.assertTrue(plan.key, plan)
					if index_only:
						self.assertIn("Using index", plan.Extra or "", plan)


class TestConnectorHealth(DeskTestCase):
	def test_health_moves_from_unknown_to_degraded_and_reason_hides_secrets(self):
		self.assertEqual(connector_health(self.connector)["indicator"], "Unknown")
		record_circuit_outcome(self.connector, success=False, error=f"HTTP 401 with Bearer {SECRET}")
		health = connector_health(self.connector)
		self.assertEqual((health["indicator"], health["color"]), ("Degraded", "orange"))
		self.assertNotIn(SECRET, health["reason"])
		self.assertTrue(health["last_failure_at"])
		insert_rows(
			self.connector, [{"status": "Queued"}] * 2 + [{"status": "Failed"}] + [{"status": "Dead"}]
		)
		health = connector_health(self.connector)
		self.assertEqual((health["waiting"], health["dead"]), (3, 1))

	def test_pause_holds_until_resume_even_when_a_test_connection_succeeds(self):
		with RecordingServer() as server:
			connector = make_connector(f"{CONNECTOR} Pause", server.url)
			self.assertEqual(pause_connector(connector)["indicator"], "Paused")
			self.assertTrue(test_connection(connector)["ok"])
			state = frappe.db.get_value(
				"Connector", connector, ["health_status", "circuit_state"], as_dict=True
			)
			self.assertEqual((state.health_status, state.circuit_state), ("Paused", "Open"))
			self.assertEqual(resume_connector(connector)["indicator"], "Unknown")
			self.assertTrue(test_connection(connector)["ok"])
			self.assertEqual(connector_health(connector)["indicator"], "Healthy")

	def test_a_paused_connector_gets_no_deliveries(self):
		from integration_hub.outbound.outbox import claim_due_rows

		pause_connector(self.connector)
		insert_rows(self.connector, [{"status": "Queued"}])
		frappe.db.sql(
			"update `tabSync Log` set next_attempt_at = %s where connector = %s",
			(add_to_date(now_datetime(), seconds=-1), self.connector),
		)
		self.assertEqual(claim_due_rows(self.connector), [])

	def test_only_integration_managers_pause_and_resume(self):
		frappe.set_user(make_user("ih-desk-plain@example.com", ["Accounts User"]))
		for action in (pause_connector, resume_connector, connector_health):
			with self.subTest(action=action.__name__), self.assertRaises(frappe.PermissionError):
				action(self.connector)


class TestReadableSyncLog(DeskTestCase):
	def test_bodies_are_laid_out_and_secrets_masked_again(self):
		request = json.dumps({"method": "POST", "url": "https://api.example.com/x", "body": '{"total":5}'})
		response = f'{{"access_token":"abc","note":"{SECRET}"}}'
		name = insert_rows(self.connector, [{"status": "Success"}])[0]
		frappe.db.set_value("Sync Log", name, {"request": request, "response": response})
		bodies = readable_bodies(name)
		self.assertEqual(bodies["request"]["format"], "json")
		self.assertEqual(json.loads(bodies["request"]["text"])["body"], {"total": 5})
		self.assertNotIn(SECRET, bodies["response"]["text"])
		self.assertNotIn("abc", bodies["response"]["text"])
		frappe.set_user(make_user("ih-desk-plain@example.com", ["Accounts User"]))
		with self.assertRaises(frappe.PermissionError):
			readable_bodies(name)


class TestMappingRows(DeskTestCase):
	def test_every_wrong_row_gets_its_own_message(self):
		doc = {
			"doctype": "Mapping",
			"__islocal": 1,
			"direction": "Outbound",
			"connector": self.connector,
			"source_doctype": "Sales Invoice",
			"fields": [
				{
					"doctype": "Mapping Field",
					"idx": 1,
					"source_type": "Field",
					"source": "customer",
					"target": "a",
				},
				{
					"doctype": "Mapping Field",
					"idx": 2,
					"source_type": "Field",
					"source": "no_such",
					"target": "b",
				},
				{
					"doctype": "Mapping Field",
					"idx": 3,
					"source_type": "Path",
					"source": "items[].nope",
					"target": "c",
				},
				{
					"doctype": "Mapping Field",
					"idx": 4,
					"source_type": "Field",
					"source": "grand_total",
					"target": "d",
					"transform": "round",
					"argument": "two",
				},
			],
		}
		errors = check_rows(json.dumps(doc))
		self.assertEqual(sorted(errors), ["2", "3", "4"])
		self.assertIn("no_such", errors["2"])
		self.assertIn("nope", errors["3"])

	def test_the_guided_setup_creates_the_mapping_disabled(self):
		name = create_from_template("sales_invoice_to_accounting", self.connector, "IH Desk Setup", enabled=0)
		self.assertEqual(frappe.db.get_value("Mapping", name, "enabled"), 0)
