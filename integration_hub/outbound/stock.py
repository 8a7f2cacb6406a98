"""Stock levels: ERPNext updates Bin quantities without document events, so stock ledger entries stand in.

Each submitted Stock Ledger Entry queues the (item, warehouse) Bin for every enabled outbound mapping
of Bin. Rows for the same Bin coalesce in the worker, whose payload reads the Bin after the movement
committed, so the remote receives the new quantity once, batched with the other bins that moved.
"""

from __future__ import annotations

import frappe

from integration_hub.mappings import get_outbound_index
from integration_hub.outbound.dispatch import queue_outbound

STOCK_EVENT = "on_update"


def on_stock_ledger_entry(doc, method: str) -> None:
	mapping_names = get_outbound_index().get("Bin", {}).get(STOCK_EVENT)
	if not mapping_names:
		return
	bin_name = frappe.db.get_value("Bin", {"item_code": doc.item_code, "warehouse": doc.warehouse})
	if not bin_name:
		return
	bin_doc = frappe.get_doc("Bin", bin_name)
	for mapping_name in mapping_names:
		queue_outbound(mapping_name, bin_doc, STOCK_EVENT)
