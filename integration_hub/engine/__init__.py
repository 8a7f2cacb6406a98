"""The sync engine: transports, auth, signatures, mapping and retry policy.

Pure Python that never imports frappe. It takes plain dicts and small dataclasses and returns
results; the Frappe glue turns documents into those inputs and results back into documents.
"""
