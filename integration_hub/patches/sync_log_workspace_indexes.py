"""Sites installed before the workspace cards and charts get their Sync Log indexes (new sites get them when
the DocType is created)."""

from integration_hub.integration_hub.doctype.sync_log.sync_log import on_doctype_update


def execute():
	on_doctype_update()
