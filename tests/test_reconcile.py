"""The reconciliation classifier: every class, the per-day totals, and a remote list it never holds."""

from __future__ import annotations

import tracemalloc

import pytest

from integration_hub.engine.errors import ConfigurationError, MappingError
from integration_hub.engine.reconcile import (
	AMOUNT_DIFFERS,
	BOUND_TO_GONE_ID,
	DEAD_IN_SYNC_LOG,
	DUPLICATE_AT_REMOTE,
	INBOUND,
	MISSING_AT_REMOTE,
	NEVER_DELIVERED,
	NOT_IMPORTED,
	STATUS_DIFFERS,
	UNKNOWN_AT_REMOTE,
	ListSpec,
	LocalRecord,
	Reconciler,
	RemoteRecord,
	read_remote,
)


def invoices(count: int, day: str = "2026-11-30") -> list[LocalRecord]:
	return [LocalRecord(f"SINV-{n:04d}", day, 100.0 + n, "INR", remote_id=f"r{n}") for n in range(count)]


def remote_of(local: LocalRecord, **changes) -> RemoteRecord:
	values = {
		"remote_id": local.remote_id,
		"day": local.day,
		"amount": local.amount,
		"currency": local.currency,
		"reference": local.name,
	}
	return RemoteRecord(**(values | changes))


def kinds(outcome) -> dict[str, list[str]]:
	found: dict[str, list[str]] = {}
	for difference in outcome.differences:
		found.setdefault(difference.kind, []).append(difference.name or difference.remote_id)
	return found


def test_every_outbound_class_is_found_once():
	local = invoices(20)
	local[3].live = False
	local[4].remote_id = None
	local[5].remote_id = None
	local[6].remote_id = None
	reconciler = Reconciler(local, tolerance=0.01)
	for number, record in enumerate(local):
		if number == 0:
			continue
		if number == 1:
			reconciler.add(remote_of(record, amount=record.amount + 5))
		elif number == 2:
			reconciler.add(remote_of(record, amount=record.amount + 0.004))
		elif number in (4, 5):
			continue
		elif number == 6:
			reconciler.add(remote_of(record, remote_id="hand-keyed-6"))
		else:
			reconciler.add(remote_of(record))
	reconciler.add(remote_of(local[7], remote_id="copy-of-7"))
	reconciler.add(RemoteRecord("stranger", "2026-11-30", 999.0, "INR"))
	reconciler.add(RemoteRecord("no-reference", "2026-11-30", local[5].amount, "INR"))
	outcome = reconciler.finish()

	assert kinds(outcome) == {
		MISSING_AT_REMOTE: ["SINV-0000", "SINV-0004"],
		AMOUNT_DIFFERS: ["SINV-0001"],
		STATUS_DIFFERS: ["SINV-0003"],
		DUPLICATE_AT_REMOTE: ["SINV-0007"],
		UNKNOWN_AT_REMOTE: ["hand-keyed-6", "no-reference", "stranger"],
	}
	by_id = {d.remote_id: d for d in outcome.differences if d.kind == UNKNOWN_AT_REMOTE}
	assert (by_id["hand-keyed-6"].suggested, by_id["hand-keyed-6"].basis) == ("SINV-0006", "reference")
	assert (by_id["no-reference"].suggested, by_id["no-reference"].basis) == ("SINV-0005", "amount and date")
	assert by_id["stranger"].suggested is None
	missing = {d.name: d.note for d in outcome.differences if d.kind == MISSING_AT_REMOTE}
	assert missing == {"SINV-0000": BOUND_TO_GONE_ID, "SINV-0004": NEVER_DELIVERED}
	assert outcome.matched == 20 - 1 - 1 - 1 - 2 - 1
	day = outcome.days["2026-11-30"]
	assert day.local_count == 19
	assert day.remote_count == 17 + 3
	assert round(day.local_total - day.remote_total, 6) == day.difference


def test_a_suggestion_between_two_equal_documents_is_not_made():
	local = [LocalRecord("A", "2026-11-30", 50.0, "INR"), LocalRecord("B", "2026-11-30", 50.0, "INR")]
	reconciler = Reconciler(local)
	reconciler.add(RemoteRecord("x", "2026-11-30", 50.0, "INR"))
	outcome = reconciler.finish()
	unknown = [d for d in outcome.differences if d.kind == UNKNOWN_AT_REMOTE]
	assert [d.suggested for d in unknown] == [None]
	assert sorted(d.name for d in outcome.differences if d.kind == MISSING_AT_REMOTE) == ["A", "B"]


def test_a_different_currency_is_an_amount_difference_even_when_the_figures_agree():
	local = invoices(1)
	reconciler = Reconciler(local)
	reconciler.add(remote_of(local[0], currency="USD"))
	assert kinds(reconciler.finish()) == {AMOUNT_DIFFERS: ["SINV-0000"]}


def test_an_accepted_difference_keeps_its_fingerprint_until_a_side_changes():
	local = invoices(1)
	first = Reconciler(local)
	first.add(remote_of(local[0], amount=1.0))
	again = Reconciler(local)
	again.add(remote_of(local[0], amount=1.0))
	changed = Reconciler(local)
	changed.add(remote_of(local[0], amount=2.0))
	prints = [r.finish().differences[0].fingerprint for r in (first, again, changed)]
	assert prints[0] == prints[1] != prints[2]


def test_inbound_lone_remote_records_are_not_imported_or_dead_and_deleted_documents_show():
	local = invoices(5)
	local[2].exists = False
	reconciler = Reconciler(local, direction=INBOUND, dead_ids={"new-dead"})
	for record in local[:4]:
		reconciler.add(remote_of(record))
	reconciler.add(RemoteRecord("new-ok", "2026-11-30", 10.0, "INR"))
	reconciler.add(RemoteRecord("new-dead", "2026-11-30", 11.0, "INR"))
	outcome = reconciler.finish()
	assert kinds(outcome) == {
		NOT_IMPORTED: ["new-ok", "r2"],
		DEAD_IN_SYNC_LOG: ["new-dead"],
		MISSING_AT_REMOTE: ["SINV-0004"],
	}
	assert outcome.local_count == 4


def test_read_remote_takes_paths_and_says_what_it_could_not_find():
	spec = ListSpec(
		id_path="id",
		reference_path="invoice_number",
		amount_path="totals.gross",
		currency_path="currency",
		status_path="state",
		date_path="issued_at",
	)
	record = {
		"id": 7,
		"invoice_number": "SINV-1",
		"totals": {"gross": "118.00"},
		"currency": "INR",
		"state": "VOID",
		"issued_at": "2026-11-30T23:10:00+05:30",
	}
	remote = read_remote(record, spec, 1)
	assert (remote.remote_id, remote.reference, remote.amount, remote.day, remote.live) == (
		"7",
		"SINV-1",
		118.0,
		"2026-11-30",
		False,
	)
	with pytest.raises(ConfigurationError, match="remote id path 'uuid' finds nothing in record 3"):
		read_remote(record, ListSpec(id_path="uuid"), 3)
	with pytest.raises(MappingError, match="not a number"):
		read_remote({**record, "totals": {"gross": "n/a"}}, spec, 1)
	with pytest.raises(ConfigurationError, match="not an object"):
		read_remote("<html>", spec, 1)


def test_a_long_remote_list_of_matched_records_is_not_held():
	count = 50_000
	local = invoices(count)
	reconciler = Reconciler(local)
	tracemalloc.start()
	before, _ = tracemalloc.get_traced_memory()
	for record in local:
		reconciler.add(remote_of(record, raw={"id": record.remote_id, "padding": "x" * 200}))
	outcome = reconciler.finish()
	after, _ = tracemalloc.get_traced_memory()
	tracemalloc.stop()
	assert outcome.matched == count and not outcome.differences
	assert after - before < 2_000_000


def test_side_by_side_marks_only_the_fields_that_differ():
	from integration_hub.engine.reconcile import project, side_by_side

	erpnext = {
		"number": "SINV-1",
		"total": 118.0,
		"lines": [{"sku": "A", "qty": 2}],
		"customer": "Acme ",
		"y": 1,
	}
	remote = {
		"number": "SINV-1",
		"total": "118.004",
		"lines": [{"sku": "B", "qty": 2}],
		"customer": "ACME",
		"x": 1,
	}
	rows = {row["field"]: row for row in side_by_side(erpnext, remote, tolerance=0.01)}
	assert [f for f, row in rows.items() if row["differs"]] == ["lines[0].sku", "y"]
	assert rows["x"]["erpnext"] is None and not rows["x"]["differs"]
	document = {"customer": "C1", "items": [{"item_code": "A", "rate": 5, "idx": 1}], "owner": "me"}
	assert project(document, {"customer": "", "items": [{"item_code": ""}]}) == {
		"customer": "C1",
		"items": [{"item_code": "A"}],
	}
