"""DESIGN §3 import rules: the pure core never imports I/O libraries, transports, executor or report."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pushorch"
PURE = (  # packages and modules, relative to pushorch
    "spec",
    "load",
    "observed",
    "facts",
    "commands",
    "actions",
    "planner",
    "errors",
    "events",
    "secret",
    "templates",
    "variables",
    "connection",
    "ansible.inventory",
    "ansible.load_inventory",
    "ansible.ini",
    "ansible.hostnames",
    "ansible.tags",
    "ansible.patterns",
    "ansible.export",
    "ansible.vault",
    "consul.settings",
    "consul.commands",
    "fleet.record",
    "fleet.commands",
    "fleet.history",
)
FORBIDDEN_IN_PURE = (
    "click",
    "asyncssh",
    "paramiko",
    "rich",
    "subprocess",
    "socket",
    "pushorch.transport",
    "pushorch.execute",
    "pushorch.converge",
    "pushorch.report",
    "pushorch.cli",
)
PRINTERS = ("report", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_pure(name: str) -> bool:
    relative = name.removeprefix("pushorch.")
    return any(relative == p or relative.startswith(p + ".") for p in PURE)


def _transitive(name: str, seen: set[str] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    for imported in _imports(MODULES[name]):
        seen.add(imported)
        for candidate in (imported, imported.rsplit(".", 1)[0]):
            if candidate in MODULES and candidate not in seen:
                seen.add(candidate)
                _transitive(candidate, seen)
    return seen


def test_pure_modules_import_nothing_forbidden() -> None:
    offenders = []
    for name in sorted(MODULES):
        if not _is_pure(name):
            continue
        for imported in _transitive(name):
            if any(imported == bad or imported.startswith(bad + ".") for bad in FORBIDDEN_IN_PURE):
                offenders.append(f"{name} -> {imported}")
    assert offenders == []


def test_only_transports_import_ssh_libraries() -> None:
    offenders = [
        f"{name} -> {imported}"
        for name, path in MODULES.items()
        if not name.startswith("pushorch.transport")
        for imported in _imports(path)
        if imported.split(".")[0] in ("asyncssh", "paramiko")
    ]
    assert offenders == []


def test_only_report_and_cli_print() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name.split(".")[1] in PRINTERS if "." in name else False:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{name}:{node.lineno} print()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("stdout", "stderr")
                and getattr(node.value, "id", "") == "sys"
            ):
                offenders.append(f"{name}:{node.lineno} sys.{node.attr}")
    assert offenders == []


def test_the_rule_can_fail(tmp_path: Path) -> None:
    # The walker must see a forbidden import when there is one.
    bad = tmp_path / "bad.py"
    bad.write_text("import click\nfrom asyncssh import connect\n")
    assert {"click", "asyncssh", "asyncssh.connect"} <= _imports(bad)


def test_every_module_has_a_docstring() -> None:
    missing = [name for name, path in MODULES.items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []


def test_exec_and_inventory_load_no_schema_model() -> None:
    """Issue 22: `exec` on 100 hosts cost 1.49x the bare asyncssh floor's CPU; ~110 ms of it was building
    the playbook schema's pydantic models, which `exec` never uses (pulled in by --tags' helpers and the
    duration parser). What `exec` loads must stay free of them."""
    import subprocess
    import sys

    probe = (
        "import sys, pushorch.cli.main, pushorch.fanout, pushorch.transport.asyncssh, pushorch.connection; "
        "print(sorted(m for m in sys.modules if m == 'pydantic' or m.startswith('pushorch.spec')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
