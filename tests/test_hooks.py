"""hooks.py as Frappe's installer reads it: installable offline, and no key given twice."""

import ast
import pathlib
import re

import pytest

HOOKS = pathlib.Path(__file__).resolve().parent.parent / "integration_hub" / "hooks.py"
GIT_URL = re.compile(r"^(https?://|ssh://|git@)")


def hook_assignments() -> list[ast.Assign]:
	tree = ast.parse(HOOKS.read_text())
	return [node for node in tree.body if isinstance(node, ast.Assign)]


def required_apps() -> list[str]:
	for node in hook_assignments():
		if any(getattr(target, "id", None) == "required_apps" for target in node.targets):
			return list(ast.literal_eval(node.value))
	return []


def looked_up_remotely(entry: str) -> bool:
	"""True when Frappe's installer would ask GitHub which organisation owns ``entry``.

	``frappe.installer.parse_app_name`` resolves a git URL or an ``org/repo[@tag]`` name by itself; a bare
	app name goes to ``find_org``, which sends un-timed requests to api.github.com.
	"""
	if GIT_URL.match(entry):
		return False
	org_repo = entry.split("@", 1)[0].split("/")
	return not (len(org_repo) == 2 and all(org_repo))


def test_required_apps_resolve_without_network():
	apps = required_apps()
	assert apps, "hooks.py declares no required_apps; ERPNext must be installed first"
	remote = [entry for entry in apps if looked_up_remotely(entry)]
	assert not remote, f"required_apps entries {remote} make Frappe's installer ask GitHub; use 'org/repo'"


@pytest.mark.parametrize(
	("entry", "remote"),
	[
		("erpnext", True),
		("erpnext@version-15", True),
		("frappe/erpnext", False),
		("frappe/erpnext@version-15", False),
		("https://github.com/frappe/erpnext", False),
		("/erpnext", True),
	],
)
def test_the_guard_tells_bare_names_from_org_repo(entry, remote):
	assert looked_up_remotely(entry) is remote


def test_no_hook_is_assigned_twice():
	names = [target.id for node in hook_assignments() for target in node.targets if hasattr(target, "id")]
	repeated = {name for name in names if names.count(name) > 1}
	assert not repeated, f"hooks.py assigns {sorted(repeated)} more than once"


def test_no_dict_hook_repeats_a_key():
	for node in ast.walk(ast.parse(HOOKS.read_text())):
		if isinstance(node, ast.Dict):
			keys = [ast.literal_eval(key) for key in node.keys if key is not None]
			assert len(keys) == len(set(keys)), f"a dict in hooks.py repeats a key: {keys}"
