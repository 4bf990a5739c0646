"""Inventory model, host expressions and host patterns (pure; no ansible needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushorch.ansible.hostnames import expand_host
from pushorch.ansible.load_inventory import load_inventory
from pushorch.ansible.patterns import select
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("expr", "names", "port"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"], None),
        ("db-[a:e:2]", ["db-a", "db-c", "db-e"], None),
        ("n[:2]", ["n0", "n1", "n2"], None),
        ("r[1:2]-u[a:b]", ["r1-ua", "r1-ub", "r2-ua", "r2-ub"], None),
        ("app[1:2]:2222", ["app1", "app2"], 2222),
        ("[::1]:22", ["::1"], 22),
        ("fe80::1", ["fe80::1"], None),
        ("10.0.0.[1:3]", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], None),
    ],
)
def test_host_expressions(expr: str, names: list[str], port: int | None) -> None:
    assert expand_host(expr) == (names, port)


@pytest.mark.parametrize("expr", ["w[1:x]", "w[01:5]", "w[1:3:0]", "w[3]", "w[1:3", "w:"])
def test_bad_host_expressions(expr: str) -> None:
    with pytest.raises(ValueError):
        expand_host(expr)


def _inv(name: str):  # type: ignore[no-untyped-def]
    return load_inventory([str(FIXTURES / "inventory" / name / "hosts")])


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        # the order `ansible all --list-hosts` gives for this inventory
        ("all", ["cache1", "be1", "fe1", "fe2", "fe-stg1"]),
        ("*", ["cache1", "be1", "fe1", "fe2", "fe-stg1"]),
        ("prod", ["fe1", "fe2", "be1"]),
        ("frontend:backend", ["fe1", "fe2", "be1"]),
        ("prod:&shared", ["be1"]),
        ("everything:!frontend", ["be1", "fe-stg1"]),
        ("!frontend", ["cache1", "be1", "fe-stg1"]),
        ("fe*", ["fe1", "fe2", "fe-stg1"]),
        ("~fe\\d", ["fe1", "fe2"]),
        ("frontend[0]", ["fe1"]),
        ("frontend[-1]", ["fe2"]),
        ("prod[1:2]", ["fe2", "be1"]),
        ("fe1,be1", ["fe1", "be1"]),
        ("nothing", []),
    ],
)
def test_patterns(pattern: str, hosts: list[str]) -> None:
    assert select(_inv("ini_children"), pattern) == hosts


def test_pattern_file(tmp_path: Path) -> None:
    listing = tmp_path / "limit.txt"
    listing.write_text("fe1\nbe1\n")
    assert select(_inv("ini_children"), f"@{listing}", read_file=lambda p: Path(p).read_text()) == ["fe1", "be1"]


def test_precedence_without_ansible() -> None:
    inv = _inv("ini_precedence")
    h1, h2 = inv.host_vars("h1"), inv.host_vars("h2")
    # child (depth 2) beats parent (depth 1); aaa and zzz are depth 1 like parent, so child wins for `level`
    assert h1["level"] == "child" and h2["level"] == "host"
    assert h1["same_depth"] == "zzz"  # same depth: later name wins
    assert h1["only_all"] == 1 and h1["from_parent"] == "p"


def test_group_vars_files_beat_inventory_at_every_depth() -> None:
    inv = load_inventory([str(FIXTURES / "inventory" / "precedence_conflict" / "hosts")])
    assert inv.host_vars("h1") == {"x": "file-parent", "y": "file-parent", "z": "file-parent"}
    assert inv.host_vars("h2")["x"] == "inv-host"


def test_host_list_and_several_sources() -> None:
    inv = load_inventory(["a,b:2200,"])
    assert list(inv.hosts) == ["a", "b"] and inv.host_vars("b") == {"ansible_port": 2200}
    base = FIXTURES / "inventory" / "multi_source"
    inv = load_inventory([str(base / "a" / "hosts"), str(base / "b" / "hosts.yml")])
    assert inv.host_vars("w1") == {"from": "b", "a_file": True, "b_file": True, "from_file": "b"}
