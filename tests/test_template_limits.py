"""Templates: the Jinja2 3.1.5 escape, path injection and render budgets (issue #11, 3, 4 and 8)."""

from __future__ import annotations

import time
from importlib.metadata import version

import pytest

from integration_hub.engine.errors import MappingError
from integration_hub.engine.mapping import compile_condition, compile_mapping, render_template
from integration_hub.engine.templating import Expression, render_path

# CVE-2025-27516: |attr hands out str.format unwrapped, and its format string walks to the builtins.
ATTR_FORMAT_ESCAPE = '{{ "{0.__call__.__builtins__}"|attr("format")(not_here) }}'


def test_attr_format_sandbox_escape_is_refused():
	with pytest.raises(MappingError, match="unsafe"):
		render_template(ATTR_FORMAT_ESCAPE, {})


def test_installed_jinja_has_the_attr_fix():
	assert tuple(int(part) for part in version("Jinja2").split(".")[:3]) >= (3, 1, 6)


# Path injection


@pytest.mark.parametrize(
	("name", "expected"),
	[
		("Evil/../BIGCORP-LTD", "/contacts/external/Evil%2F..%2FBIGCORP-LTD"),
		(
			"x/../../../admin/users/1?force=true#",
			"/contacts/external/x%2F..%2F..%2F..%2Fadmin%2Fusers%2F1%3Fforce%3Dtrue%23",
		),
		("Grant Plastics Ltd.", "/contacts/external/Grant%20Plastics%20Ltd."),
		("Ünïcode & Co", "/contacts/external/%C3%9Cn%C3%AFcode%20%26%20Co"),
	],
)
def test_values_rendered_into_a_path_are_percent_encoded(name, expected):
	assert render_path("/contacts/external/{{ doc.name }}", {"doc": {"name": name}}) == expected


def test_literal_path_text_and_queries_are_kept():
	template = "/api/method/frappe.client.cancel?doctype=Sales%20Invoice&name={{ remote_id }}"
	assert render_path(template, {"remote_id": "SINV/1&x=2"}) == (
		"/api/method/frappe.client.cancel?doctype=Sales%20Invoice&name=SINV%2F1%26x%3D2"
	)
	assert render_path("/invoices/{{ remote_id }}/void", {"remote_id": None}) == "/invoices//void"


@pytest.mark.parametrize("value", ["..", "."])
def test_dot_segments_are_refused(value):
	with pytest.raises(MappingError, match="segment"):
		render_path("/contacts/{{ value }}/x", {"value": value})


@pytest.mark.parametrize("template", ["/contacts/../admin/{{ value }}", "/contacts/%2e%2E/admin/{{ value }}"])
def test_dot_segment_in_the_template_itself_is_refused(template):
	with pytest.raises(MappingError, match="segment"):
		render_path(template, {"value": "1"})


def test_an_encoded_dot_value_is_only_text():
	assert render_path("/contacts/{{ value }}", {"value": "%2e%2e"}) == "/contacts/%252e%252e"


# Render budget


@pytest.mark.parametrize(
	"template",
	[
		"{{ 'a' * 2**30 }}",
		"{{ 'a' * 1000 * 1000 * 1000 }}",
		"{{ [1] * 2**30 }}",
		"{{ 10 ** 100000000 }}",
		"{{ '%999999999s' % 'x' }}",
		"{{ '%999999999s'|format('x') }}",
		"{{ '{:999999999}'.format('x') }}",
		"{{ 'x'.ljust(999999999) }}",
		"{{ 'x'|center(999999999) }}",
		"{{ ('a' * 100000)|replace('a', 'a' * 100000) }}",
		"{{ ('a' * 100000).replace('a', 'a' * 100000) }}",
		"{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
		"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
		"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
		"{{ lipsum(100000) }}",
	],
)
def test_expensive_templates_are_refused_quickly(template):
	started = time.monotonic()
	with pytest.raises(MappingError, match=r"budget|too large|too long|not allowed|lipsum"):
		render_template(template, {})
	assert time.monotonic() - started < 3


def test_ordinary_loops_and_bodies_still_render():
	doc = {"items": [{"code": f"SKU-{n}", "qty": n} for n in range(2000)]}
	body = (
		'{"lines": [{% for item in doc["items"] %}{"code": {{ item.code|tojson }}, "qty": {{ item.qty }}}'
		"{{ ', ' if not loop.last }}{% endfor %}]}"
	)
	assert len(compile_mapping([], body).apply(doc)["lines"]) == 2000
	assert render_template("{{ 'ab' * 3 }}-{{ 2 ** 10 }}-{{ '%5s'|format('x') }}", {}) == "ababab-1024-    x"


def test_expressions_and_conditions_are_bounded_too():
	with pytest.raises(MappingError, match="too large"):
		Expression("'a' * 2**30").evaluate({})
	condition = compile_condition("(doc.name * 100000)|length > 0")
	with pytest.raises(MappingError, match="too large"):
		condition({"name": "x" * 1000})
	assert compile_condition("doc.grand_total > 0 and doc.docstatus == 1")({"grand_total": 5, "docstatus": 1})
