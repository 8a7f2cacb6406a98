"""Reads documents for delivery as plain dicts, many at a time and only the child tables a mapping reads.

``frappe.get_doc`` runs the controller's constructor (ERPNext's accounting controllers query on
construction) and loads every child table; a worker mapping a batch of invoices needs neither.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import frappe
from frappe.model import table_fields

TEMPORAL_TYPES = (date, datetime, time, timedelta)


def load_documents(doctype: str, names: list[str], tables: frozenset[str] | None = None) -> dict[str, dict]:
	"""{name: document dict} for the names that exist; ``tables`` limits the child tables (None: all)."""
	if not names:
		return {}
	meta = frappe.get_meta(doctype)
	parents = frappe.db.sql(
		f"select * from `tab{doctype}` where name in %(names)s", {"names": list(names)}, as_dict=True
	)
	documents = {row.name: plain(row, doctype) for row in parents}
	if not documents:
		return {}
	for df in meta.get("fields", {"fieldtype": ("in", table_fields)}):
		rows_by_parent: dict[str, list] = {name: [] for name in documents}
		if tables is None or df.fieldname in tables:
			children = frappe.db.sql(
				f"""select * from `tab{df.options}`
				where parent in %(names)s and parenttype = %(doctype)s and parentfield = %(field)s
				order by parent, idx""",
				{"names": list(documents), "doctype": doctype, "field": df.fieldname},
				as_dict=True,
			)
			for child in children:
				rows_by_parent[child.parent].append(plain(child, df.options))
		for name, rows in rows_by_parent.items():
			documents[name][df.fieldname] = rows
	return documents


def plain(row: dict, doctype: str) -> dict:
	"""Dates and times as strings, as ``Document.as_dict(convert_dates_to_str=True)`` gives them."""
	values = {key: str(value) if isinstance(value, TEMPORAL_TYPES) else value for key, value in row.items()}
	values["doctype"] = doctype
	return values
