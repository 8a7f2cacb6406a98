"""Link rules: remote values become ERPNext names, misses are named with their field, row and value."""

import pytest

from integration_hub.engine.errors import MappingError
from integration_hub.engine.links import LinkRule, parse_link_target, resolve_links

ITEMS_BY_SKU = {"SKU-1": "ITEM-0001", "SKU-2": "ITEM-0002"}


def lookup_from(table):
	calls = []

	def lookup(rule, values):
		calls.append((rule.target, list(values)))
		return {value: table[value] for value in values if value in table}

	return lookup, calls


def test_child_rows_are_resolved_with_one_lookup_per_rule():
	document = {"items": [{"item_code": "SKU-1"}, {"item_code": "SKU-2"}, {"item_code": "SKU-1"}]}
	lookup, calls = lookup_from(ITEMS_BY_SKU)
	resolve_links(document, [LinkRule("items[].item_code", "Item", "field", "item_code")], lookup)
	assert [row["item_code"] for row in document["items"]] == ["ITEM-0001", "ITEM-0002", "ITEM-0001"]
	assert calls == [("items[].item_code", ["SKU-1", "SKU-2"])]


def test_a_miss_names_the_doctype_value_field_and_row():
	document = {"items": [{"item_code": "SKU-1"}, {"item_code": "SKU-404"}]}
	lookup, _calls = lookup_from(ITEMS_BY_SKU)
	with pytest.raises(MappingError) as caught:
		resolve_links(document, [LinkRule("items[].item_code", "Item", "field", "item_code")], lookup)
	assert "Item 'SKU-404' for item_code in items row 2 was not found (by item_code)" in caught.value.message
	assert caught.value.field == "items[].item_code"


def test_an_empty_value_takes_the_default_which_is_looked_up_too():
	document = {"customer": None}
	lookup, calls = lookup_from({"Walk-in": "Walk-in Customer"})
	resolve_links(document, [LinkRule("customer", "Customer", default="Walk-in")], lookup)
	assert document["customer"] == "Walk-in Customer"
	assert calls == [("customer", ["Walk-in"])]


def test_an_empty_value_without_default_is_left_for_the_doctype_to_judge():
	document = {"customer": ""}
	lookup, calls = lookup_from({})
	resolve_links(document, [LinkRule("customer", "Customer")], lookup)
	assert document == {"customer": ""} and calls == []


def test_every_miss_is_reported_at_once():
	document = {"employee": "D-9", "items": [{"item_code": "X"}]}
	lookup, _calls = lookup_from({})
	with pytest.raises(MappingError) as caught:
		resolve_links(
			document,
			[
				LinkRule("employee", "Employee", "field", "attendance_device_id"),
				LinkRule("items[].item_code", "Item"),
			],
			lookup,
		)
	assert "Employee 'D-9' for employee was not found (by attendance_device_id)" in caught.value.message
	assert "Item 'X' for item_code in items row 1 was not found (by name)" in caught.value.message


@pytest.mark.parametrize("target", ["items[].x[].y", "a.b", "", "items[]", "[].x"])
def test_bad_targets_are_refused(target):
	with pytest.raises(MappingError):
		parse_link_target(target)


def test_a_value_nothing_matches_is_created_once_when_the_rule_says_how():
	made = []

	def create(rule, value):
		made.append(value)
		return f"CUST-{value}"

	document = {"customer": "shop-7", "items": [{"item_code": "SKU-1"}]}
	lookup, _calls = lookup_from(ITEMS_BY_SKU)
	rules = [
		LinkRule("customer", "Customer", "binding", create_with="Shop Customers", create_from="customer"),
		LinkRule("items[].item_code", "Item", "field", "item_code"),
	]
	resolve_links(document, rules, lookup, create)
	assert document["customer"] == "CUST-shop-7" and made == ["shop-7"]
	assert document["items"][0]["item_code"] == "ITEM-0001"


def test_a_rule_without_create_with_never_creates():
	document = {"customer": "shop-8"}
	lookup, _calls = lookup_from({})
	with pytest.raises(MappingError, match="Customer 'shop-8' for customer was not found"):
		resolve_links(
			document, [LinkRule("customer", "Customer", "binding")], lookup, lambda rule, value: "X"
		)
