"""The engine must stay importable without frappe: no module under integration_hub/engine may import it."""

import ast
import pathlib
import subprocess
import sys

import pytest

ENGINE_DIR = pathlib.Path(__file__).resolve().parent.parent / "integration_hub" / "engine"


def called_name(func: ast.expr) -> str:
	return getattr(func, "id", None) or getattr(func, "attr", "")


def frappe_imports(source: str) -> list[int]:
	"""Line numbers of every import of frappe (or a frappe submodule) in ``source``, at any depth."""
	lines = []
	for node in ast.walk(ast.parse(source)):
		if isinstance(node, ast.Import):
			names = [alias.name for alias in node.names]
		elif isinstance(node, ast.ImportFrom):
			names = [node.module or ""]
		elif isinstance(node, ast.Call) and called_name(node.func) in {"__import__", "import_module"}:
			names = [arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant)]
		else:
			continue
		if any(name == "frappe" or str(name).startswith("frappe.") for name in names):
			lines.append(node.lineno)
	return lines


def engine_modules() -> list[pathlib.Path]:
	return sorted(ENGINE_DIR.rglob("*.py"))


def test_engine_has_modules():
	assert len(engine_modules()) > 1


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: p.name)
def test_engine_module_does_not_import_frappe(path):
	offending = frappe_imports(path.read_text())
	assert not offending, f"{path.name} imports frappe at line(s) {offending}"


def test_checker_catches_every_import_form():
	sources = [
		"import frappe",
		"import frappe.utils as fu",
		"from frappe import _",
		"def f():\n\tfrom frappe.utils import now\n",
		"import importlib\nimportlib.import_module('frappe')",
		"__import__('frappe')",
	]
	for source in sources:
		assert frappe_imports(source), source
	assert not frappe_imports("import requests\nfrom zeep import Client\nfrappe_like = 1")


def test_importing_the_engine_loads_no_frappe():
	names = [
		"integration_hub.engine." + p.relative_to(ENGINE_DIR).with_suffix("").as_posix().replace("/", ".")
		for p in engine_modules()
		if p.name != "__init__.py"
	]
	code = "import sys\n" + "".join(f"import {n}\n" for n in names) + "print('frappe' in sys.modules)"
	result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
	assert result.returncode == 0, result.stderr
	assert result.stdout.strip() == "False"
