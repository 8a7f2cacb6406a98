"""Mapping engine: field rules, transforms, body templates, the sandbox, extraction and hashing."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from integration_hub.engine import mapping as mapping_module
from integration_hub.engine import templating
from integration_hub.engine.errors import MappingError
from integration_hub.engine.mapping import (
	FieldRule,
	canonical_json,
	check_template,
	compile_condition,
	compile_mapping,
	extract,
	payload_hash,
	render_template,
)


def sales_invoice() -> dict:
	"""What ``frappe.get_doc("Sales Invoice", ...).as_dict()`` looks like, trimmed to the fields used here."""
	return {
		"doctype": "Sales Invoice",
		"name": "ACC-SINV-2026-00042",
		"docstatus": 1,
		"customer": "Grant Plastics Ltd.",
		"contact_email": "Accounts@GrantPlastics.example",
		"posting_date": date(2026, 11, 20),
		"due_date": date(2026, 12, 20),
		"currency": "INR",
		"items": [
			{
				"idx": 1,
				"item_code": "SKU-001",
				"item_name": "Widget, blue",
				"qty": 2.0,
				"rate": 150.0,
				"amount": 300.0,
			},
			{
				"idx": 2,
				"item_code": "SKU-002",
				"item_name": "Gadget",
				"qty": 1.0,
				"rate": 99.99,
				"amount": 99.99,
			},
		],
		"taxes": [
			{"idx": 1, "account_head": "Output Tax CGST - TC", "rate": 9.0, "tax_amount": 36.0},
			{"idx": 2, "account_head": "Output Tax SGST - TC", "rate": 9.0, "tax_amount": 36.0},
		],
		"net_total": 399.99,
		"total_taxes_and_charges": 72.0,
		"grand_total": 471.99,
	}


INVOICE_RULES = [
	FieldRule("invoice_number", "name", required=True),
	FieldRule(
		"status", "docstatus", transform="lookup", argument='{"0": "DRAFT", "1": "AUTHORISED", "2": "VOIDED"}'
	),
	FieldRule("customer.name", "customer", required=True),
	FieldRule("customer.email", "contact_email", transform="lower"),
	FieldRule("date", "posting_date", transform="date", argument="%d/%m/%Y"),
	FieldRule("due_date", "due_date", transform="date"),
	FieldRule("currency", "currency"),
	FieldRule("lines[].line_no", "row", "expression"),
	FieldRule("lines[].sku", "items[].item_code", "path", required=True),
	FieldRule("lines[].description", "items[].item_name", "path", transform="truncate", argument="10"),
	FieldRule("lines[].quantity", "items[].qty", "path", transform="float"),
	FieldRule("lines[].unit_price", "items[].rate", "path", transform="round", argument="2"),
	FieldRule("lines[].amount_minor", "item.qty * item.rate", "expression", transform="minor_units"),
	FieldRule("lines[].currency", "currency"),
	FieldRule("tax_lines[].account", "taxes[].account_head", "path"),
	FieldRule("tax_lines[].rate", "taxes[].rate", "path"),
	FieldRule("tax_lines[].amount_minor", "taxes[].tax_amount", "path", transform="minor_units"),
	FieldRule(
		"totals.net_minor",
		"doc.grand_total - doc.total_taxes_and_charges",
		"expression",
		transform="minor_units",
	),
	FieldRule("totals.tax_minor", "total_taxes_and_charges", transform="minor_units"),
	FieldRule("totals.gross_minor", "grand_total", transform="minor_units"),
	FieldRule(
		"reference", transform="template", argument="{{ doc.doctype }}/{{ doc.name }}/{{ context.event }}"
	),
	FieldRule("source_system", "ERPNext", "constant"),
]

EXPECTED_INVOICE = {
	"invoice_number": "ACC-SINV-2026-00042",
	"status": "AUTHORISED",
	"customer": {"name": "Grant Plastics Ltd.", "email": "accounts@grantplastics.example"},
	"date": "20/11/2026",
	"due_date": "2026-12-20",
	"currency": "INR",
	"lines": [
		{
			"line_no": 1,
			"sku": "SKU-001",
			"description": "Widget, bl",
			"quantity": 2.0,
			"unit_price": 150.0,
			"amount_minor": 30000,
			"currency": "INR",
		},
		{
			"line_no": 2,
			"sku": "SKU-002",
			"description": "Gadget",
			"quantity": 1.0,
			"unit_price": 99.99,
			"amount_minor": 9999,
			"currency": "INR",
		},
	],
	"tax_lines": [
		{"account": "Output Tax CGST - TC", "rate": 9.0, "amount_minor": 3600},
		{"account": "Output Tax SGST - TC", "rate": 9.0, "amount_minor": 3600},
	],
	"totals": {"net_minor": 39999, "tax_minor": 7200, "gross_minor": 47199},
	"reference": "Sales Invoice/ACC-SINV-2026-00042/on_submit",
	"source_system": "ERPNext",
}


def map_one(value, transform: str = "", argument: str = "", context: dict | None = None, **rule):
	"""Apply a single rule ``out`` ← field ``value``."""
	compiled = compile_mapping([FieldRule("out", "value", transform=transform, argument=argument, **rule)])
	return compiled.apply({"value": value}, context)["out"]


# --- outbound: Sales Invoice → accounting ---------------------------------------------------------------------


def test_sales_invoice_to_accounting_payload():
	doc = sales_invoice()
	output = compile_mapping(INVOICE_RULES).apply(doc, {"event": "on_submit"})
	assert output == EXPECTED_INVOICE
	assert json.dumps(output) == json.dumps(EXPECTED_INVOICE), "key order follows the rules"
	assert doc == sales_invoice(), "the document is not mutated"


def test_decimal_and_dates_become_json_values():
	rules = [
		FieldRule("total", "grand_total"),
		FieldRule("posted", "posting_date"),
		FieldRule("at", "creation"),
	]
	doc = {
		"grand_total": Decimal("471.99"),
		"posting_date": date(2026, 11, 20),
		"creation": datetime(2026, 11, 20, 9, 5),
	}
	output = compile_mapping(rules).apply(doc)
	assert output == {"total": 471.99, "posted": "2026-11-20", "at": "2026-11-20T09:05:00"}
	assert type(output["total"]) is float


def test_nested_lists_zip_per_level_and_broadcast_parent_values():
	rules = [
		FieldRule("lines[].sku", "items[].item_code", "path"),
		FieldRule("lines[].taxes[].rate", "items[].taxes[].rate", "path"),
		FieldRule("lines[].taxes[].sku", "items[].item_code", "path"),
		FieldRule("lines[].taxes[].currency", "currency"),
		FieldRule("lines[].taxes[].position", "parent.item_code ~ '/' ~ row", "expression"),
	]
	doc = {
		"currency": "EUR",
		"items": [
			{"item_code": "A", "taxes": [{"rate": 9}, {"rate": 5}]},
			{"item_code": "B", "taxes": []},
			{"item_code": "C"},
		],
	}
	assert compile_mapping(rules).apply(doc) == {
		"lines": [
			{
				"sku": "A",
				"taxes": [
					{"rate": 9, "sku": "A", "currency": "EUR", "position": "A/1"},
					{"rate": 5, "sku": "A", "currency": "EUR", "position": "A/2"},
				],
			},
			{"sku": "B", "taxes": []},
			{"sku": "C", "taxes": []},
		]
	}


def test_paths_indexes_projections_and_scalar_lists():
	rules = [
		FieldRule("first_rate", "items[0].rate", "path"),
		FieldRule("last_rate", "items[-1].rate", "path"),
		FieldRule("missing", "items[5].rate", "path"),
		FieldRule("all_codes", "items[].item_code", "path"),
		FieldRule("all_tax_rates", "items[].taxes[].rate", "path"),
		FieldRule("city", "customer_address.city", "path"),
		FieldRule("tags[]", "items[].item_code", "path"),
	]
	doc = {"items": [{"item_code": "A", "rate": 1.5, "taxes": [{"rate": 9}]}, {"item_code": "B", "rate": 2}]}
	assert compile_mapping(rules).apply(doc) == {
		"first_rate": 1.5,
		"last_rate": 2,
		"missing": None,
		"all_codes": ["A", "B"],
		"all_tax_rates": [9],
		"city": None,
		"tags": ["A", "B"],
	}


def test_expressions_see_fields_doc_item_and_child_table_named_items():
	rules = [
		FieldRule("net", "grand_total - total_taxes_and_charges", "expression", transform="round"),
		FieldRule("count", "doc.items | length", "expression"),
		FieldRule("lines[].value", "item.qty * item.rate", "expression"),
		FieldRule("lines[].code", "items[].item_code", "path"),
		FieldRule("key", "context.idempotency_key", "expression"),
	]
	output = compile_mapping(rules).apply(sales_invoice(), {"idempotency_key": "k-1"})
	assert output["net"] == 399.99
	assert output["count"] == 2
	assert [line["value"] for line in output["lines"]] == [300.0, 99.99]
	assert output["key"] == "k-1"


def test_missing_source_list_gives_empty_list():
	rules = [FieldRule("lines[].sku", "items[].item_code", "path", required=True)]
	assert compile_mapping(rules).apply({}) == {"lines": []}
	assert compile_mapping(rules).apply({"items": None}) == {"lines": []}


# --- transforms -----------------------------------------------------------------------------------------------

TRANSFORM_CASES = [
	("upper", "", "abc", "ABC"),
	("lower", "", "AbC", "abc"),
	("strip", "", "  x \n", "x"),
	("str", "", 12.5, "12.5"),
	("str", "", Decimal("12.50"), "12.50"),
	("str", "", date(2026, 11, 20), "2026-11-20"),
	("str", "", True, "true"),
	("int", "", "12", 12),
	("int", "", 3.0, 3),
	("int", "", Decimal("7.00"), 7),
	("float", "", "12.50", 12.5),
	("float", "", Decimal("0.1"), 0.1),
	("float", "", 3, 3.0),
	("boolean", "", 1, True),
	("boolean", "", 0, False),
	("boolean", "", "yes", True),
	("boolean", "", "No", False),
	("boolean", "", " TRUE ", True),
	("boolean", "", "false", False),
	("boolean", "", "Y", True),
	("boolean", "", "n", False),
	("boolean", "", "on", True),
	("boolean", "", False, False),
	("round", "", 2.675, 2.68),
	("round", "2", 2.665, 2.67),
	("round", "2", 1.005, 1.01),
	("round", "0", 0.5, 1.0),
	("round", "0", -2.5, -3.0),
	("round", "3", "1.23456", 1.235),
	("minor_units", "", 10.005, 1001),
	("minor_units", "", 19.99, 1999),
	("minor_units", "", 0.285, 29),
	("minor_units", "", "12.50", 1250),
	("minor_units", "", Decimal("0.015"), 2),
	("minor_units", "3", 1234.5, 1234500),
	("minor_units", "0", 99.5, 100),
	("date", "", date(2026, 11, 20), "2026-11-20"),
	("date", "", datetime(2026, 11, 20, 23, 59), "2026-11-20"),
	("date", "", "2026-11-20", "2026-11-20"),
	("date", "%d.%m.%Y", "2026-11-20T10:15:00Z", "20.11.2026"),
	("date", "%Y%m%d", "2026-11-20 10:15:00", "20261120"),
	("datetime", "", datetime(2026, 11, 20, 10, 15), "2026-11-20T10:15:00"),
	("datetime", "", "2026-11-20T10:15:00Z", "2026-11-20T10:15:00+00:00"),
	("datetime", "", date(2026, 11, 20), "2026-11-20T00:00:00"),
	("datetime", "%Y%m%d%H%M", "2026-11-20 10:15:00", "202611201015"),
	("parse_date", "", "2026-11-20T10:15:00Z", "2026-11-20"),
	("parse_date", "%d/%m/%Y", "20/11/2026", "2026-11-20"),
	("parse_datetime", "", "2026-11-20T10:15:00Z", "2026-11-20 10:15:00"),
	("parse_datetime", "", "2026-11-20T10:15:00.123456+05:30", "2026-11-20 10:15:00"),
	("parse_datetime", "%d.%m.%Y %H:%M", "20.11.2026 10:15", "2026-11-20 10:15:00"),
	("parse_time", "", "2026-11-20T10:15:07+05:30", "10:15:07"),
	("parse_datetime", "%a, %d %b %Y %H:%M:%S", "Fri, 20 Nov 2026 10:15:00", "2026-11-20 10:15:00"),
	("parse_datetime", "unix", 1795169700, "2026-11-20 10:15:00"),
	("parse_datetime", "unix_ms", "1795169700000", "2026-11-20 10:15:00"),
	("lookup", '{"paid": "Paid", "pending": "Unpaid"}', "paid", "Paid"),
	("lookup", '{"paid": "Paid", "*": "Other"}', "refunded", "Other"),
	("lookup", '{"1": "Submitted"}', 1, "Submitted"),
	("lookup", '{"true": "Yes", "false": "No"}', True, "Yes"),
	("default", "N/A", None, "N/A"),
	("default", "N/A", "", "N/A"),
	("default", "N/A", "x", "x"),
	("constant", "fixed", "ignored", "fixed"),
	("constant", "fixed", None, "fixed"),
	("template", "{{ value | upper }}-{{ doc.value }}", "abc", "ABC-abc"),
	("template", "{{ value or 'none' }}", None, "none"),
	("json", "", '{"a": [1, 2]}', {"a": [1, 2]}),
	("json", "", {"a": 1}, {"a": 1}),
	("split", "", "a, b,,c", ["a", "b", "c"]),
	("split", "|", "a|b", ["a", "b"]),
	("join", "", ["a", None, "b"], "a,b"),
	("join", " / ", ["a", "b"], "a / b"),
	("join", "-", [1, 2.5], "1-2.5"),
	("truncate", "3", "abcdef", "abc"),
	("truncate", "2", 12345, "12"),
	("", "", "as is", "as is"),
]


@pytest.mark.parametrize(("transform", "argument", "value", "expected"), TRANSFORM_CASES)
def test_transform(transform, argument, value, expected):
	result = map_one(value, transform, argument)
	assert result == expected
	assert type(result) is type(expected)


@pytest.mark.parametrize(
	"transform", ["upper", "int", "float", "boolean", "round", "minor_units", "date", "lookup"]
)
def test_none_passes_through_transforms(transform):
	argument = '{"*": "x"}' if transform == "lookup" else ""
	assert map_one(None, transform, argument) is None


TRANSFORM_ERRORS = [
	("boolean", "", "maybe", "'maybe' is not a yes/no value"),
	("boolean", "", 2, "2 is not a yes/no value"),
	("int", "", "12.5", "'12.5' is not a whole number"),
	("int", "", "abc", "'abc' is not a number"),
	("float", "", "1,5", "'1,5' is not a number"),
	("float", "", True, "True is not a number"),
	("float", "", "nan", "'nan' is not a finite number"),
	("minor_units", "", "abc", "'abc' is not a number"),
	("date", "", "20/11/2026", "'20/11/2026' is not an ISO 8601 date or date-time"),
	("date", "", 12, "12 is not a date"),
	("parse_datetime", "%d/%m/%Y", "2026-11-20", "does not match format '%d/%m/%Y'"),
	(
		"lookup",
		'{"paid": "Paid", "pending": "Unpaid"}',
		"refunded",
		"'refunded' is not in the lookup table (keys: paid, pending)",
	),
	("json", "", "{bad", "transform 'json' could not handle '{bad'"),
	("join", "", 5, "5 is not a list"),
]


@pytest.mark.parametrize(("transform", "argument", "value", "message"), TRANSFORM_ERRORS)
def test_transform_error(transform, argument, value, message):
	with pytest.raises(MappingError) as caught:
		map_one(value, transform, argument)
	assert caught.value.message.startswith("Field 'out' (from 'value'): ")
	assert message in caught.value.message
	assert caught.value.field == "out"


def test_parse_datetime_moves_aware_times_to_the_context_timezone():
	assert (
		map_one("2026-11-20T10:15:00Z", "parse_datetime", context={"timezone": "Asia/Kolkata"})
		== "2026-11-20 15:45:00"
	)
	assert map_one("2026-11-20T22:00:00Z", "parse_date", context={"timezone": "Asia/Kolkata"}) == "2026-11-21"
	assert (
		map_one("2026-11-20 10:15:00", "parse_datetime", context={"timezone": "Asia/Kolkata"})
		== "2026-11-20 10:15:00"
	)
	with pytest.raises(MappingError, match="could not handle"):
		map_one("2026-11-20T10:15:00Z", "parse_datetime", context={"timezone": "Mars/Olympus_Mons"})


def test_parse_datetime_reads_naive_times_in_the_remote_timezone():
	device_zone = {"timezone": "Asia/Kolkata", "remote_timezone": "Asia/Dubai"}
	assert map_one("2026-11-20 08:00:00", "parse_datetime", context=device_zone) == "2026-11-20 09:30:00"
	assert map_one("2026-11-20T08:00:00Z", "parse_datetime", context=device_zone) == "2026-11-20 13:30:00"
	assert map_one("2026-11-20T08:00:00+04:00", "parse_time", context=device_zone) == "09:30:00"


def test_transform_names_are_case_insensitive():
	assert map_one("abc", " Upper ") == "ABC"


def test_every_registered_transform_is_covered():
	from integration_hub.engine.transforms import TRANSFORMS

	assert {case[0] for case in TRANSFORM_CASES} - {""} == set(TRANSFORMS)


# --- default and required -------------------------------------------------------------------------------------


def test_default_replaces_none_or_missing_before_the_transform():
	assert map_one(None, "boolean", default="yes") is True
	compiled = compile_mapping([FieldRule("out", "absent", default="Walk-in", required=True)])
	assert compiled.apply({}) == {"out": "Walk-in"}
	assert map_one("", default="x") == "", "an empty string is a value; the 'default' transform covers it"


def test_required_top_level_message():
	compiled = compile_mapping([FieldRule("customer_id", "customer", required=True)])
	with pytest.raises(MappingError) as caught:
		compiled.apply({"customer": None})
	assert caught.value.message == "Required field 'customer_id' (from 'customer') is empty"
	assert caught.value.field == "customer_id"


def test_required_list_row_message_names_target_source_and_row():
	compiled = compile_mapping([FieldRule("lines[].sku", "items[].item_code", "path", required=True)])
	doc = {"items": [{"item_code": "A"}, {"item_code": "B"}, {"item_code": ""}]}
	with pytest.raises(MappingError) as caught:
		compiled.apply(doc)
	assert str(caught.value) == "Required field 'lines[].sku' (from 'items[].item_code') is empty in row 3"
	assert caught.value.field == "lines[].sku"


def test_required_checks_the_value_after_the_transform():
	compiled = compile_mapping(
		[FieldRule("lines[].sku", "items[].item_code", "path", transform="strip", required=True)]
	)
	with pytest.raises(
		MappingError,
		match=r"^Required field 'lines\[\].sku' \(from 'items\[\].item_code'\) is empty in row 1$",
	):
		compiled.apply({"items": [{"item_code": "   "}]})


def test_required_nested_row_message():
	compiled = compile_mapping(
		[FieldRule("lines[].taxes[].rate", "items[].taxes[].rate", "path", required=True)]
	)
	doc = {"items": [{"taxes": [{"rate": 9}]}, {"taxes": [{"rate": None}]}]}
	with pytest.raises(MappingError) as caught:
		compiled.apply(doc)
	assert caught.value.message == (
		"Required field 'lines[].taxes[].rate' (from 'items[].taxes[].rate') is empty in row 2, sub-row 1"
	)


def test_row_number_in_transform_errors():
	compiled = compile_mapping([FieldRule("lines[].qty", "items[].qty", "path", transform="float")])
	with pytest.raises(MappingError) as caught:
		compiled.apply({"items": [{"qty": 1}, {"qty": "two"}]})
	assert caught.value.message == "Field 'lines[].qty' (from 'items[].qty') in row 2: 'two' is not a number"


# --- compile-time validation ----------------------------------------------------------------------------------

COMPILE_ERRORS = [
	(
		FieldRule("customer", "customer", transform="uppr"),
		"Rule 2 ('customer'): unknown transform 'uppr' (known: ",
	),
	(
		FieldRule("lines[].sku", "items[.item_code", "path"),
		"Rule 2 ('lines[].sku'): bad path 'items[.item_code'",
	),
	(FieldRule("sku", "items[x].code", "path"), "Rule 2 ('sku'): bad path 'items[x].code'"),
	(FieldRule("sku", "items..code", "path"), "Rule 2 ('sku'): bad path 'items..code'"),
	(
		FieldRule("lines[0].sku", "items[].item_code", "path"),
		"Rule 2 ('lines[0].sku'): target 'lines[0].sku' may use []",
	),
	(
		FieldRule("grid[][]", "items[].x", "path"),
		"Rule 2 ('grid[][]'): target 'grid[][]': lists of lists are not supported",
	),
	(FieldRule("", "name"), "Rule 2 (''): the target is empty"),
	(
		FieldRule("net", "doc.grand_total -", "expression"),
		"Rule 2 ('net'): expression 'doc.grand_total -' has a syntax error",
	),
	(
		FieldRule("ref", transform="template", argument="{{ value"),
		"Rule 2 ('ref'): template '{{ value' has a syntax error",
	),
	(
		FieldRule("status", "s", transform="lookup", argument="{paid: 1}"),
		"Rule 2 ('status'): lookup argument is not valid JSON",
	),
	(
		FieldRule("status", "s", transform="lookup", argument="[1]"),
		"Rule 2 ('status'): lookup argument should be a JSON object",
	),
	(
		FieldRule("total", "t", transform="round", argument="two"),
		"Rule 2 ('total'): argument 'two' should be a whole number",
	),
	(FieldRule("short", "t", transform="truncate"), "Rule 2 ('short'): argument '' should be a whole number"),
	(
		FieldRule("city", "address.city"),
		"Rule 2 ('city'): 'address.city' is not a plain field name; use source type 'path'",
	),
	(FieldRule("city", "city", "magic"), "Rule 2 ('city'): unknown source type 'magic'"),
	(FieldRule("invoice_number", "title"), "Rule 2 ('invoice_number'): the same target is set by rule 1"),
	(
		FieldRule("invoice_number.id", "title"),
		"Rule 2 ('invoice_number.id'): the target is inside 'invoice_number'",
	),
	(
		FieldRule("lines[].currency", "currency"),
		"Rule 2 ('lines[].currency'): no rule for 'lines[]' reads a list (like 'items[].item_code'), so its length is unknown",
	),
]


@pytest.mark.parametrize(("rule", "message"), COMPILE_ERRORS, ids=[case[1][:40] for case in COMPILE_ERRORS])
def test_compile_errors_name_the_rule(rule, message):
	with pytest.raises(MappingError) as caught:
		compile_mapping([FieldRule("invoice_number", "name"), rule])
	assert caught.value.message.startswith(message), caught.value.message
	assert caught.value.field == rule.target


def test_rules_of_one_list_must_read_one_source_list():
	rules = [
		FieldRule("lines[].sku", "items[].item_code", "path"),
		FieldRule("lines[].tax", "taxes[].rate", "path"),
	]
	with pytest.raises(MappingError) as caught:
		compile_mapping(rules)
	assert caught.value.message == (
		"Rule 2 ('lines[].tax'): rules for 'lines[]' must read the same list, "
		"but this one reads 'taxes[]' and rule 1 reads 'items[]'"
	)


def test_bad_body_template_syntax_fails_at_compile_time():
	with pytest.raises(
		MappingError, match=r"^Body template: template .* has a syntax error on line 2"
	) as caught:
		compile_mapping([], '{"a": 1,\n "b": {% if %}}')
	assert caught.value.field == "body_template"


# --- runtime failures are MappingErrors -----------------------------------------------------------------------

RUNTIME_ERRORS = [
	(FieldRule("x", "doc.grand_total / 0", "expression"), {"grand_total": 1}, "ZeroDivisionError"),
	(FieldRule("x", "doc.missing - 1", "expression"), {}, "UndefinedError"),
	(FieldRule("x", "customer.name", "path"), {"customer": "Grant"}, "cannot read 'name' from a str"),
	(FieldRule("x", "items[0]", "path"), {"items": {"a": 1}}, "expected a list but found a dict"),
	(FieldRule("x", "blob"), {"blob": object()}, "an object cannot be sent as JSON"),
	(FieldRule("x", "ratio"), {"ratio": float("inf")}, "inf cannot be sent as JSON"),
	(
		FieldRule("lines[].sku", "items[].item_code", "path"),
		{"items": {"a": 1}},
		"List 'lines[]' (from 'items[]'): expected a list but found a dict",
	),
]


@pytest.mark.parametrize(("rule", "doc", "message"), RUNTIME_ERRORS)
def test_runtime_failures_raise_mapping_error(rule, doc, message):
	with pytest.raises(MappingError) as caught:
		compile_mapping([rule]).apply(doc)
	assert message in caught.value.message


def test_apply_rejects_a_non_record():
	with pytest.raises(MappingError, match="expected a record"):
		compile_mapping([FieldRule("a", "b")]).apply(["not", "a", "dict"])


# --- body template mode ---------------------------------------------------------------------------------------

BODY_TEMPLATE = """{
  "invoice": {{ doc.name | tojson }},
  "date": {{ iso_date(doc.posting_date) | tojson }},
  "total_minor": {{ minor_units(doc.grand_total) }},
  "tax_minor": {{ doc.total_taxes_and_charges | minor_units }},
  "lines": [{% for item in doc.items %}
    {"sku": {{ item.item_code | tojson }}, "qty": {{ item.qty | tojson }}, "posted": {{ doc.posting_date | tojson }}}
    {%- if not loop.last %},{% endif %}{% endfor %}
  ],
  "key": {{ context.idempotency_key | tojson }},
  "note": {{ doc.remarks | tojson }}
}"""


def test_body_template_renders_json():
	output = compile_mapping([], BODY_TEMPLATE).apply(sales_invoice(), {"idempotency_key": "SI-42:on_submit"})
	assert output == {
		"invoice": "ACC-SINV-2026-00042",
		"date": "2026-11-20",
		"total_minor": 47199,
		"tax_minor": 7200,
		"lines": [
			{"sku": "SKU-001", "qty": 2.0, "posted": "2026-11-20"},
			{"sku": "SKU-002", "qty": 1.0, "posted": "2026-11-20"},
		],
		"key": "SI-42:on_submit",
		"note": None,
	}


def test_body_template_invalid_json_names_position_and_snippet():
	compiled = compile_mapping([], '{"invoice": {{ doc.name }}}')
	with pytest.raises(MappingError) as caught:
		compiled.apply(sales_invoice())
	assert caught.value.message == (
		"Body template did not render valid JSON: Expecting value at line 1 column 13, "
		"near '{\"invoice\": <<here>>ACC-SINV-2026-00042}'"
	)
	assert caught.value.field == "body_template"


@pytest.mark.parametrize(
	("template", "message"),
	[
		('{"a": NaN}', "Body template rendered NaN, which is not valid JSON"),
		("[1, 2]", "Body template must render a JSON object, not a list"),
		('{"a": "{{ doc.nope.deeper }}"}', "Body template: template"),
	],
)
def test_body_template_other_failures(template, message):
	with pytest.raises(MappingError) as caught:
		compile_mapping([], template).apply({"name": "x"})
	assert caught.value.message.startswith(message)


def test_rules_overlay_the_body_template():
	template = (
		'{"invoice": {"id": {{ doc.name | tojson }}, "status": "DRAFT"}, "lines": [{"x": 1}], "keep": true}'
	)
	rules = [
		FieldRule("invoice.status", "AUTHORISED", "constant"),
		FieldRule("lines[].sku", "items[].item_code", "path"),
		FieldRule("extra", "currency"),
	]
	output = compile_mapping(rules, template).apply(sales_invoice())
	assert output == {
		"invoice": {"id": "ACC-SINV-2026-00042", "status": "AUTHORISED"},
		"lines": [{"sku": "SKU-001"}, {"sku": "SKU-002"}],
		"keep": True,
		"extra": "INR",
	}
	assert list(output) == ["invoice", "lines", "keep", "extra"]


# --- sandbox --------------------------------------------------------------------------------------------------


class Secretive:
	_token = "s3cret"
	visible = "ok"


ESCAPES = [
	"{{ ''.__class__.__mro__ }}",
	"{{ ''.__class__ }}",
	"{{ cycler.__init__.__globals__ }}",
	"{{ obj._token }}",
	"{{ doc['__class__'] }}",
	"{{ doc.items.append(1) }}",
	"{% set x = doc.update({'name': 'evil'}) %}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_render_template_refuses_sandbox_escapes(template):
	doc = {"items": [], "name": "SI-1"}
	with pytest.raises(MappingError, match=r"^unsafe template"):
		render_template(template, {"doc": doc, "obj": Secretive()})
	assert doc == {"items": [], "name": "SI-1"}
	assert render_template("{{ obj.visible }}", {"obj": Secretive()}) == "ok"


@pytest.mark.parametrize(
	"expression", ["''.__class__.__mro__", "cycler.__init__.__globals__", "doc['items'].append(1)"]
)
def test_mapping_expressions_refuse_sandbox_escapes(expression):
	doc = sales_invoice()
	compiled = compile_mapping([FieldRule("x", expression, "expression")])
	with pytest.raises(MappingError) as caught:
		compiled.apply(doc)
	assert caught.value.message.startswith(f"Field 'x' (from {expression!r}): unsafe expression")
	assert doc == sales_invoice()


def test_condition_refuses_sandbox_escapes():
	with pytest.raises(MappingError, match="unsafe expression"):
		compile_condition("doc.__class__.__base__.__subclasses__()")({"docstatus": 1})


# --- render_template, conditions, extraction, hashing --------------------------------------------------------


def test_render_template_idempotency_key_and_path():
	variables = {"doc": sales_invoice(), "context": {"event": "on_submit"}, "remote_id": "INV 7/8"}
	key = render_template("{{ doc.doctype }}:{{ doc.name }}:{{ context.event }}", variables)
	assert key == "Sales Invoice:ACC-SINV-2026-00042:on_submit"
	assert (
		render_template("/api/resource/Sales Invoice/{{ remote_id }}", variables)
		== "/api/resource/Sales Invoice/INV 7/8"
	)
	assert render_template("{{ doc.missing_value or 'none' }}", variables) == "none"
	assert render_template("[{{ nothing }}]", {"nothing": None}) == "[]"


def test_check_template_compiles_without_rendering():
	check_template("{{ doc.doctype }}:{{ doc.name }}:{{ context.event }}")
	with pytest.raises(MappingError, match="has a syntax error on line 1"):
		check_template("{{ doc.name }")


def test_render_template_errors():
	with pytest.raises(MappingError, match="UndefinedError: 'remote_id' is undefined"):
		render_template("/api/resource/Sales Invoice/{{ remote_id }}", {})
	with pytest.raises(MappingError, match="has a syntax error on line 1"):
		render_template("{{ doc.name ", {})


def test_condition():
	condition = compile_condition(
		'doc.docstatus == 1 and doc.grand_total > 0 and doc.customer_group == "Retail"'
	)
	assert condition({"docstatus": 1, "grand_total": 10, "customer_group": "Retail"}) is True
	assert condition({"docstatus": 1, "grand_total": 10, "customer_group": "Wholesale"}) is False
	assert condition({"docstatus": 0, "grand_total": 10, "customer_group": "Retail"}) is False
	assert condition({"docstatus": 1, "grand_total": 10}) is False, "a missing field is simply unequal"
	assert compile_condition("")({}) is True
	assert compile_condition("   ")({"docstatus": 2}) is True
	assert compile_condition("context.event == 'on_submit'")({}, {"event": "on_submit"}) is True


def test_condition_errors():
	with pytest.raises(MappingError, match="syntax error"):
		compile_condition("doc.docstatus ==")
	with pytest.raises(MappingError, match="TypeError"):
		compile_condition("doc.grand_total > 'x'")({"grand_total": 5})


@pytest.mark.parametrize(
	("data", "expression", "expected"),
	[
		({"id": 42}, "id", 42),
		({"data": {"invoice": {"id": "INV-7"}}}, "data.invoice.id", "INV-7"),
		({"results": [{"name": "SINV-1"}, {"name": "SINV-2"}]}, "results[0].name", "SINV-1"),
		({"data": {}}, "data.invoice.id", None),
		({"id": 42}, "", None),
		({"id": 42}, "   ", None),
	],
)
def test_extract(data, expression, expected):
	assert extract(data, expression) == expected


def test_extract_errors_and_cache():
	with pytest.raises(MappingError, match=r"bad extraction expression 'data\.\['"):
		extract({}, "data.[")
	with pytest.raises(MappingError, match=r"extracting 'length\(id\)' failed"):
		extract({"id": 42}, "length(id)")
	mapping_module._jmespath.cache_clear()
	for _ in range(5):
		extract({"id": 1}, "id")
	assert mapping_module._jmespath.cache_info().misses == 1


def test_canonical_json_and_hash():
	payload = {"b": [Decimal("1.50"), date(2026, 11, 20)], "a": {"y": 1, "x": None}}
	assert canonical_json(payload) == '{"a":{"x":null,"y":1},"b":[1.5,"2026-11-20"]}'
	assert payload_hash(payload) == payload_hash({"a": {"x": None, "y": 1}, "b": [1.5, "2026-11-20"]})
	assert payload_hash(payload) != payload_hash({"a": {"x": None, "y": 1}, "b": [1.51, "2026-11-20"]})
	assert len(payload_hash(payload)) == 64
	with pytest.raises(MappingError):
		payload_hash({"a": float("nan")})


# --- inbound: web-shop order → Sales Order --------------------------------------------------------------------

WEB_ORDER = """{
  "id": "1001",
  "customer": {"email": "Ana.Lopez@Example.com", "first_name": "Ana"},
  "currency": "EUR",
  "financial_status": "paid",
  "requested_delivery": "27/11/2026",
  "tags": "gift, express",
  "shipping_address": {"city": "Lisbon"},
  "line_items": [
    {"sku": "SKU-001 ", "quantity": 2, "price": "12.50"},
    {"sku": "SKU-002", "quantity": "1", "price": "5.00"}
  ],
  "created_at": "2026-11-20T10:15:00Z"
}"""

ORDER_RULES = [
	FieldRule("customer", "customer.email", "path", transform="lower", required=True),
	FieldRule("custom_webshop_order_id", "id", required=True),
	FieldRule("transaction_date", "created_at", transform="parse_date"),
	FieldRule("delivery_date", "requested_delivery", transform="parse_date", argument="%d/%m/%Y"),
	FieldRule("custom_ordered_at", "created_at", transform="parse_datetime"),
	FieldRule("currency", "currency", default="EUR"),
	FieldRule("order_type", "Sales", "constant"),
	FieldRule(
		"custom_payment_status",
		"financial_status",
		transform="lookup",
		argument='{"paid": "Paid", "pending": "Unpaid", "*": "Unknown"}',
	),
	FieldRule("items[].item_code", "line_items[].sku", "path", transform="strip", required=True),
	FieldRule("items[].qty", "line_items[].quantity", "path", transform="float"),
	FieldRule("items[].rate", "line_items[].price", "path", transform="float"),
	FieldRule("items[].delivery_date", "requested_delivery", transform="parse_date", argument="%d/%m/%Y"),
	FieldRule("custom_shipping_city", "shipping_address.city", "path"),
	FieldRule("custom_tags", "tags", transform="split"),
]


def test_web_shop_order_to_sales_order():
	order = json.loads(WEB_ORDER)
	assert compile_mapping(ORDER_RULES).apply(order) == {
		"customer": "ana.lopez@example.com",
		"custom_webshop_order_id": "1001",
		"transaction_date": "2026-11-20",
		"delivery_date": "2026-11-27",
		"custom_ordered_at": "2026-11-20 10:15:00",
		"currency": "EUR",
		"order_type": "Sales",
		"custom_payment_status": "Paid",
		"items": [
			{"item_code": "SKU-001", "qty": 2.0, "rate": 12.5, "delivery_date": "2026-11-27"},
			{"item_code": "SKU-002", "qty": 1.0, "rate": 5.0, "delivery_date": "2026-11-27"},
		],
		"custom_shipping_city": "Lisbon",
		"custom_tags": ["gift", "express"],
	}


def test_web_shop_order_in_the_site_timezone_and_with_a_bad_line():
	order = json.loads(WEB_ORDER)
	compiled = compile_mapping(ORDER_RULES)
	assert compiled.apply(order, {"timezone": "Asia/Kolkata"})["custom_ordered_at"] == "2026-11-20 15:45:00"
	del order["line_items"][1]["sku"]
	with pytest.raises(MappingError) as caught:
		compiled.apply(order)
	assert (
		caught.value.message
		== "Required field 'items[].item_code' (from 'line_items[].sku') is empty in row 2"
	)


# --- compile once ---------------------------------------------------------------------------------------------


class CallCounter:
	def __init__(self, func):
		self.func = func
		self.calls = 0

	def __call__(self, *args, **kwargs):
		self.calls += 1
		return self.func(*args, **kwargs)


def test_compiled_mapping_never_recompiles(monkeypatch):
	counters = {
		"jinja": CallCounter(templating.SANDBOX.compile),
		"path": CallCounter(mapping_module.parse_path),
		"transform": CallCounter(mapping_module.bind_transform),
	}
	monkeypatch.setattr(templating.SANDBOX, "compile", counters["jinja"])
	monkeypatch.setattr(mapping_module, "parse_path", counters["path"])
	monkeypatch.setattr(mapping_module, "bind_transform", counters["transform"])
	compiled = compile_mapping(
		[
			FieldRule("id", "name"),
			FieldRule("lines[].sku", "items[].item_code", "path"),
			FieldRule("lines[].amount", "item.qty * item.rate", "expression", transform="minor_units"),
			FieldRule("ref", transform="template", argument="{{ doc.name }}-{{ context.n }}"),
		]
	)
	assert all(counter.calls > 0 for counter in counters.values()), "the spies see compilation"
	for counter in counters.values():
		counter.calls = 0
	doc = {"name": "SI-1", "items": [{"item_code": "A", "qty": 2, "rate": 1.25}]}
	first = compiled.apply(doc, {"n": 1})
	for _ in range(10_000):
		assert compiled.apply(doc, {"n": 1}) == first
	assert {name: counter.calls for name, counter in counters.items()} == {
		"jinja": 0,
		"path": 0,
		"transform": 0,
	}


def test_render_template_and_conditions_compile_once(monkeypatch):
	counter = CallCounter(templating.SANDBOX.compile)
	monkeypatch.setattr(templating.SANDBOX, "compile", counter)
	templating._cached_template.cache_clear()
	for number in range(1_000):
		assert render_template("{{ doc.name }}:{{ n }}", {"doc": {"name": "X"}, "n": number}) == f"X:{number}"
	condition = compile_condition("doc.docstatus == 1")
	for _ in range(1_000):
		assert condition({"docstatus": 1})
	assert counter.calls == 2
