"""The head-office side of the branch consolidation test, run on a second site with ``bench execute``.

``prepare`` sets the head office up as its administrator would (masters, the ingest mapping, an API user with
the Integration Ingest role) and returns the user's token; ``invoices`` reports what arrived.
"""

from __future__ import annotations

import frappe

from integration_hub.tests.utils import (
	api_token,
	default_company,
	make_connector,
	make_customer,
	make_item,
	mapping_from_template,
	tax_account,
)

MAPPING = "Branch Sales Invoices"
CONNECTOR = "Branch One"


def prepare(items: list[str], customer: str) -> dict:
	for item in items:
		make_item(item)
	make_customer(customer)
	company = default_company()
	make_connector(CONNECTOR, "https://branch-one.example.com")
	mapping_from_template(
		"branch_invoices_at_head_office",
		CONNECTOR,
		MAPPING,
		enabled=1,
		fields={"company": {"source": company}, "taxes[].account_head": {"source": tax_account(company)}},
	)
	return {"token": api_token("ih-branch-one@example.com", ["Integration Ingest"]), "mapping": MAPPING}


def invoices(branch: str) -> list[dict]:
	return frappe.get_all(
		"Sales Invoice",
		filters={"remarks": ("like", f"Branch invoice {branch} %")},
		fields=["name", "remarks", "docstatus", "grand_total", "total_taxes_and_charges"],
		order_by="creation asc",
	)
