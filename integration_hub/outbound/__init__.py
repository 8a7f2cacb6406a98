"""Outbound flow: document events → outbox rows → delivery to the remote."""
