"""Request and response bodies laid out for people: JSON indented, XML indented, anything else as it is.

Bodies come from remote systems and are stored cut short, so nothing here may fail on bad input: text that
does not parse is returned unchanged. XML is parsed without DTDs, entities or network access.
"""

from __future__ import annotations

import json

from lxml import etree

MAX_PRETTY_CHARS = 200_000


def readable(text: str | None) -> dict:
	"""``{"format": "json" | "xml" | "text", "text": ...}`` for one stored body."""
	text = text or ""
	stripped = text.strip()
	if not stripped or len(stripped) > MAX_PRETTY_CHARS:
		return {"format": "text", "text": text}
	if stripped[0] in "[{":
		try:
			value = json.loads(stripped)
		except ValueError:
			return {"format": "text", "text": text}
		return {"format": "json", "text": json.dumps(unwrap_bodies(value), indent=2, ensure_ascii=False)}
	if stripped.startswith("<"):
		pretty = pretty_xml(stripped)
		return {"format": "xml", "text": pretty} if pretty is not None else {"format": "text", "text": text}
	return {"format": "text", "text": text}


def unwrap_bodies(value):
	"""A stored request is ``{"method", "url", "headers", "body"}`` whose body may itself be JSON or XML text:
	show that body laid out too, as a parsed object or as an indented XML string."""
	if isinstance(value, dict) and isinstance(value.get("body"), str):
		inner = readable(value["body"])
		if inner["format"] == "json":
			return {**value, "body": json.loads(inner["text"])}
		if inner["format"] == "xml":
			return {**value, "body": inner["text"]}
	return value


def pretty_xml(text: str) -> str | None:
	if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
		return None
	parser = etree.XMLParser(
		resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
	)
	try:
		root = etree.fromstring(text.encode(), parser)
	except (etree.XMLSyntaxError, ValueError):
		return None
	return etree.tostring(root, pretty_print=True, encoding="unicode")
