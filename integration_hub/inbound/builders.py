"""Documents an inbound record cannot describe field by field, built by ERPNext's own functions.

A Payment Entry against an invoice needs the party, accounts, exchange rates and the reference row that
ERPNext's ``get_payment_entry`` works out from the invoice; a mapping with a builder therefore maps the
record to the builder's few inputs (invoice, amount, currency, reference), and the builder makes the
document. A builder rejects what it must not guess: another currency, more than is outstanding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import frappe
from frappe import _
from frappe.utils import flt, getdate, nowdate

from integration_hub.inbound.errors import RecordRejected


@dataclass(frozen=True)
class Builder:
	doctype: str
	"""What the builder creates; the mapping's Target DocType must name it."""
	inputs: dict[str, str]
	"""Input name → the DocType it links to ("" for plain values); the mapping's field rows target these."""
	required: tuple[str, ...]
	build: Callable[[dict, object], object]


def payment_for_invoice(values: dict, mapping) -> object:
	"""A Payment Entry for ``amount`` against the Sales Invoice ``invoice``, as ERPNext would draft it."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry
	from erpnext.accounts.doctype.sales_invoice.sales_invoice import get_bank_cash_account

	invoice = frappe.get_doc("Sales Invoice", values["invoice"])
	amount = flt(values.get("amount"))
	if invoice.docstatus != 1:
		raise RecordRejected(
			_("Sales Invoice {0} is not submitted, so it cannot be paid").format(invoice.name)
		)
	currency = (values.get("currency") or invoice.currency).upper()
	if currency != invoice.currency.upper():
		raise RecordRejected(
			_("The payment is in {0} but Sales Invoice {1} is in {2}; it was not applied").format(
				currency, invoice.name, invoice.currency
			)
		)
	if amount <= 0:
		raise RecordRejected(_("The payment amount {0} is not positive").format(values.get("amount")))
	outstanding = flt(invoice.outstanding_amount, invoice.precision("outstanding_amount"))
	if amount > outstanding + 0.005:
		raise RecordRejected(
			_("The payment of {0} {1} is more than the {2} outstanding on Sales Invoice {3}").format(
				amount, currency, outstanding, invoice.name
			)
		)
	payment = get_payment_entry("Sales Invoice", invoice.name, party_amount=amount)
	payment.reference_no = values.get("reference_no") or mapping.name
	payment.reference_date = getdate(values.get("reference_date") or nowdate())
	if values.get("mode_of_payment"):
		payment.mode_of_payment = values["mode_of_payment"]
		account = get_bank_cash_account(values["mode_of_payment"], invoice.company).get("account")
		if account:
			payment.paid_to = account
	return payment


def refund_notice(values: dict, mapping) -> object:
	"""Refunds are never applied on their own: the row goes Dead with what a person should do."""
	raise RecordRejected(
		_(
			"Refund {0} of {1} {2} for Sales Invoice {3} was not applied automatically: make a Credit Note "
			"(a Sales Invoice return) against {3} and a Payment Entry that pays it out, then cancel this row"
		).format(
			values.get("reference_no") or "",
			values.get("amount") or "",
			(values.get("currency") or "").upper(),
			values.get("invoice") or _("(unknown)"),
		)
	)


PAYMENT_INPUTS = {
	"invoice": "Sales Invoice",
	"amount": "",
	"currency": "",
	"reference_no": "",
	"reference_date": "",
	"mode_of_payment": "Mode of Payment",
}
BUILDERS = {
	"Payment Entry for an Invoice": Builder(
		"Payment Entry", PAYMENT_INPUTS, ("invoice", "amount", "reference_no"), payment_for_invoice
	),
	"Refund Notice": Builder("Payment Entry", PAYMENT_INPUTS, ("invoice",), refund_notice),
}


def builder_for(mapping) -> Builder | None:
	return BUILDERS.get(mapping.get("document_builder") or "")
