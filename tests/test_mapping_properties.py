"""Properties of the mapping engine: determinism, hashing, exact money, list zipping."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from integration_hub.engine.mapping import FieldRule, compile_mapping, payload_hash
from integration_hub.engine.transforms import minor_units

LEAN = settings(max_examples=60, deadline=None, database=None)

money = st.one_of(
	st.decimals(min_value=0, max_value=10**6, places=2),
	st.integers(min_value=0, max_value=10**8).map(lambda cents: cents / 100),
)
items = st.lists(
	st.fixed_dictionaries(
		{
			"item_code": st.text(min_size=1, max_size=12),
			"qty": st.integers(min_value=0, max_value=1000),
			"rate": money,
			"delivery_date": st.dates(),
			"taxes": st.lists(st.fixed_dictionaries({"rate": money}), max_size=3),
		}
	),
	max_size=8,
)
documents = st.fixed_dictionaries(
	{
		"name": st.text(max_size=20),
		"posting_date": st.dates(),
		"modified": st.datetimes(),
		"currency": st.sampled_from(["INR", "EUR", "USD"]),
		"grand_total": money,
		"remarks": st.none() | st.text(max_size=30),
		"items": items,
	}
)

INVOICE = compile_mapping(
	[
		FieldRule("number", "name", transform="upper"),
		FieldRule("date", "posting_date", transform="date", argument="%d/%m/%Y"),
		FieldRule("modified", "modified"),
		FieldRule("total_minor", "grand_total", transform="minor_units"),
		FieldRule("note", "remarks", transform="truncate", argument="10"),
		FieldRule("lines[].sku", "items[].item_code", "path", transform="strip"),
		FieldRule("lines[].amount", "item.qty * item.rate", "expression", transform="round"),
		FieldRule("lines[].due", "items[].delivery_date", "path"),
		FieldRule("lines[].currency", "currency"),
		FieldRule("lines[].taxes[].rate", "items[].taxes[].rate", "path"),
		FieldRule("ref", transform="template", argument="{{ doc.name }}:{{ context.event }}"),
	]
)


@LEAN
@given(documents)
def test_apply_is_deterministic_pure_and_json_ready(doc):
	before = copy.deepcopy(doc)
	first = INVOICE.apply(doc, {"event": "on_submit"})
	second = INVOICE.apply(doc, {"event": "on_submit"})
	assert first == second
	assert json.dumps(first) == json.dumps(second)
	assert doc == before
	assert json.loads(json.dumps(first, allow_nan=False)) == first


json_scalars = (
	st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
	json_scalars,
	lambda children: (
		st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
	),
	max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=6)


def shuffled(value: Any, rng) -> Any:
	"""The same content with every object's keys in another order."""
	if isinstance(value, dict):
		keys = list(value)
		rng.shuffle(keys)
		return {key: shuffled(value[key], rng) for key in keys}
	if isinstance(value, list):
		return [shuffled(item, rng) for item in value]
	return value


def scalar_paths(value: Any, path: tuple = ()) -> list[tuple]:
	if isinstance(value, dict):
		return [found for key, item in value.items() for found in scalar_paths(item, (*path, key))]
	if isinstance(value, list):
		return [found for index, item in enumerate(value) for found in scalar_paths(item, (*path, index))]
	return [path]


def replaced(value: Any, path: tuple, new: Any) -> Any:
	if not path:
		return new
	copied = copy.copy(value)
	copied[path[0]] = replaced(value[path[0]], path[1:], new)
	return copied


def get(value: Any, path: tuple) -> Any:
	for step in path:
		value = value[step]
	return value


@LEAN
@given(json_objects, st.randoms(use_true_random=False))
def test_payload_hash_ignores_key_order(payload, rng):
	assert payload_hash(shuffled(payload, rng)) == payload_hash(payload)


@LEAN
@given(json_objects, st.data())
def test_payload_hash_changes_with_any_scalar(payload, data):
	paths = scalar_paths(payload)
	assume(paths)
	path = data.draw(st.sampled_from(paths))
	old, new = get(payload, path), data.draw(json_scalars)
	assume(not (type(old) is type(new) and old == new))
	assert payload_hash(replaced(payload, path, new)) != payload_hash(payload)


@LEAN
@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2))
def test_minor_units_round_trip_two_decimal_amounts(amount):
	units = minor_units(amount)
	assert Decimal(units) / 100 == amount
	assert minor_units(float(amount)) == units, "a float of the same amount gives the same units"
	assert minor_units(str(amount)) == units
	assert units / 100 == float(amount)


ZIP = compile_mapping(
	[
		FieldRule("lines[].sku", "items[].item_code", "path"),
		FieldRule("lines[].n", "row", "expression"),
		FieldRule("lines[].currency", "currency"),
		FieldRule("lines[].taxes[].rate", "items[].taxes[].rate", "path"),
	]
)


@LEAN
@given(
	st.lists(
		st.fixed_dictionaries(
			{
				"item_code": st.text(max_size=8),
				"taxes": st.lists(st.fixed_dictionaries({"rate": st.integers()}), max_size=3),
			}
		),
		max_size=50,
	)
)
def test_list_zipping_preserves_length_and_order(rows):
	lines = ZIP.apply({"currency": "EUR", "items": rows})["lines"]
	assert len(lines) == len(rows)
	assert [line["sku"] for line in lines] == [row["item_code"] for row in rows]
	assert [line["n"] for line in lines] == list(range(1, len(rows) + 1))
	assert all(line["currency"] == "EUR" for line in lines)
	assert [[tax["rate"] for tax in line["taxes"]] for line in lines] == [
		[tax["rate"] for tax in row["taxes"]] for row in rows
	]
