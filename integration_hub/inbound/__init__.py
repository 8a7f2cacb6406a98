"""Inbound flow: remote records → inbound Sync Log rows → documents through bindings."""
