"""Hostile input (issue 8, first part): mutated inputs load or fail cleanly; quoted strings arrive byte-exact."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushorch.commands import files, system
from pushorch.commands.shell import quote
from pushorch.connection import ConnectionSettings
from pushorch.errors import InputError
from pushorch.load.playbooks import load_spec
from pushorch.transport.base import command_line

INVENTORY = """all:
  vars: {app_port: 8080}
  children:
    web:
      hosts:
        web-[1:3]: {zone: a}
      vars: {tier: front}
"""
INI = """top ansible_host=10.0.0.1 x='[1, 2]'
[web]
web-[1:3] zone=a
[web:vars]
tier=front
[all:children]
web
"""
PLAYBOOK = """- name: play
  hosts: web
  vars: {v: "{{ app_port }}"}
  tasks:
    - {name: dir, file: {path: /etc/app, state: directory, mode: "0755"}}
    - {name: cmd, command: {cmd: [touch, /x], creates: /x}, notify: h}
  handlers:
    - {name: h, command: ["true"]}
  services:
    - name: web
      image: "reg/web:{{ tier }}"
      replicas: 2
      ports: ["{{ v }}:80"]
      env: {A: "1", B: !secret "s"}
      health: {http: {path: /health, port: 80}}
      update: {parallelism: "50%", min_healthy_time: 2s}
      consul: {tags: [web]}
"""
NOISE = st.sampled_from([*":-{}[]\"'!&*#|>%@`\n\t ,0x", "null", "~", "{{", "}}", "<<: *a", "&a", "\x00", "é", "10e9"])


def _mutate(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if kind == "insert":
            text = text[:where] + data.draw(NOISE) + text[where:]
        elif kind == "delete":
            text = text[:where] + text[where + data.draw(st.integers(1, 12)) :]
        else:
            lines = text.splitlines(keepends=True)
            index = data.draw(st.integers(0, max(0, len(lines) - 1)))
            text = "".join(lines[: index + 1] + lines[index:])
    return text


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_inputs_load_or_fail_with_located_problems(data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(["inventory", "ini", "playbook"]))
    inventory = {"inventory": _mutate(INVENTORY, data), "ini": _mutate(INI, data)}.get(target, INVENTORY)
    playbook = _mutate(PLAYBOOK, data) if target == "playbook" else PLAYBOOK
    name = "inv.ini" if target == "ini" else "inv.yml"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_text(inventory)
        (Path(tmp) / "p.yml").write_text(playbook)
        try:
            load_spec([f"{tmp}/{name}"], [f"{tmp}/p.yml"])
        except InputError as exc:
            assert exc.problems  # every failure names at least one located problem
            for problem in exc.problems:
                assert problem.path and problem.message
        # any other exception is a bug: hypothesis reports it with the input that caused it


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=200, deadline=2000)
@given(st.lists(TEXT, min_size=1, max_size=5))
def test_command_lines_arrive_byte_exact_through_a_real_sh(values: list[str]) -> None:
    # The transports send command_line(...) to the host's shell: what printf receives must be exactly argv.
    line = command_line(ConnectionSettings(name="h", address="h"), ["printf", "%s\\0", *values], None)
    done = subprocess.run(["sh", "-c", line], capture_output=True, check=True)
    assert done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1] == values


@settings(max_examples=60, deadline=3000)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1, max_size=30))
def test_file_builders_touch_exactly_the_named_path(name: str) -> None:
    if name in (".", ".."):
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / name
        subprocess.run(files.put(str(target), 0o600, "t0k"), input=b"payload", check=True)
        assert target.read_bytes() == b"payload" and sorted(p.name for p in Path(tmp).iterdir()) == [name]
        subprocess.run(system.ensure_path(str(target), "absent", None, None, None), check=True)
        assert list(Path(tmp).iterdir()) == []


def test_nul_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote("a\0b")


def _check(tmp_path: Path, playbook_text: str) -> list[str]:
    (tmp_path / "inv.ini").write_text("[web]\nw1\n")
    (tmp_path / "p.yml").write_text(playbook_text)
    try:
        load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])
    except InputError as exc:
        return [p.message for p in exc.problems]
    return []


def test_deep_nesting_and_huge_inputs_are_bounded(tmp_path: Path) -> None:
    assert _check(tmp_path, "- hosts: web\n  vars: {x: " + "[" * 20000 + "]" * 20000 + "}\n") == [
        "YAML nesting is too deep"
    ]
    big = "- hosts: web\n  vars: {x: '" + "a" * 2_000_000 + "'}\n"  # big but allowed
    assert _check(tmp_path, big) == []
    too_big = "# " + "x" * (17 * 1024 * 1024) + "\n"
    assert _check(tmp_path, too_big) == [f"file is larger than {16 * 1024 * 1024} bytes"]
