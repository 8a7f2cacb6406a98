"""Why an inbound record was not written, as the inbound road reports it on the record's Sync Log row."""


class RecordRejected(Exception):
	"""The record cannot be applied as the mapping stands; ``args[0]`` says why (the row goes Dead)."""


class RecordSkipped(Exception):
	"""Nothing to write; ``args[0]`` says why and ``args[1]`` names the document already holding the record."""
