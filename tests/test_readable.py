"""Stored bodies laid out for the Sync Log form: JSON and XML indented, bad input left alone."""

import json

from integration_hub.engine.readable import readable


def test_json_is_indented():
	result = readable('{"a":1,"b":[1,2]}')
	assert result["format"] == "json"
	assert json.loads(result["text"]) == {"a": 1, "b": [1, 2]}
	assert '\n  "a": 1' in result["text"]


def test_a_stored_request_shows_its_json_body_as_an_object():
	stored = json.dumps({"method": "POST", "url": "https://x.example/i", "body": '{"total":5}'})
	result = readable(stored)
	assert json.loads(result["text"])["body"] == {"total": 5}


def test_a_stored_request_shows_its_xml_body_indented():
	stored = json.dumps({"method": "POST", "body": "<a><b>1</b><c/></a>"})
	body = json.loads(readable(stored)["text"])["body"]
	assert body == "<a>\n  <b>1</b>\n  <c/>\n</a>\n"


def test_xml_is_indented():
	result = readable("<Envelope><Body><Ok>yes</Ok></Body></Envelope>")
	assert result == {
		"format": "xml",
		"text": "<Envelope>\n  <Body>\n    <Ok>yes</Ok>\n  </Body>\n</Envelope>\n",
	}


def test_truncated_json_and_xml_stay_as_they_are():
	for text in ('{"a": [1, 2', "<a><b>cut", "plain words", ""):
		assert readable(text) == {"format": "text", "text": text}


def test_xml_with_a_dtd_or_entities_is_not_parsed():
	bomb = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><a>&x;&x;</a>'
	assert readable(bomb) == {"format": "text", "text": bomb}
	external = '<!DOCTYPE a SYSTEM "http://169.254.169.254/"><a/>'
	assert readable(external)["format"] == "text"
