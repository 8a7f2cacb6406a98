"""How every benchmark here runs: connected to one site as Administrator, rolled back and closed at the end."""

from __future__ import annotations

from collections.abc import Callable

import frappe


def run_on_site(site: str, body: Callable[[], None]) -> None:
	"""Call ``body`` on ``site`` (from the bench's ``sites`` folder); nothing it left uncommitted stays."""
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	try:
		body()
	finally:
		frappe.db.rollback()
		frappe.destroy()
