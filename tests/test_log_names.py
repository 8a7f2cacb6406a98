"""Sync Log names (time-ordered ids) sort by creation time, so new rows land together at the end of the clustered index."""

import re
import time

from integration_hub.engine.ids import time_ordered_id as new_log_name


def test_names_are_fourteen_base36_characters():
	assert re.fullmatch(r"[0-9a-z]{14}", new_log_name())


def test_later_names_sort_after_earlier_ones():
	names = []
	for _ in range(200):
		names.append(new_log_name())
		time.sleep(0.0001)
	assert names == sorted(names)
	assert len(set(names)) == len(names)


def test_names_made_in_the_same_microsecond_still_differ():
	assert len({new_log_name() for _ in range(5000)}) == 5000
