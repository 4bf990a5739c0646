"""Planner golden tests: YAML cases (inventory, playbook, observed state) in, expected actions out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from pushorch.actions import Action, RestartContainer
from pushorch.commands import docker as docker_cmd
from pushorch.fleet import record as fleetstate
from pushorch.fleet.record import FleetState
from pushorch.load.playbooks import load_spec
from pushorch.load.yamlfile import load_yaml
from pushorch.observed import ObservedContainer, ObservedFile, ObservedHost
from pushorch.planner import Memory, Options, plan
from pushorch.spec import Service, Spec
from tests.conftest import FIXTURES

CASES = sorted((FIXTURES / "planner").glob("*.yml"))


def _service(spec: Spec, name: str) -> Service | None:
    return next((s for h in spec.hosts.values() for p in h.plays for s in p.services if s.name == name), None)


def _container(spec: Spec, raw: dict[str, Any]) -> ObservedContainer:
    service = _service(spec, raw["service"])
    if service is not None and raw.get("was"):
        service = service.model_copy(
            update={
                k: Service.model_validate({"name": "x", "image": "x", k: v}).__getattribute__(k)
                for k, v in raw["was"].items()
            }
        )
    digest = docker_cmd.spec_hash(service) if service else "0" * 16
    labels = {
        "pushorch.service": raw["service"],
        "pushorch.spec-hash": digest,
        "pushorch.shape": json.dumps(docker_cmd.shape(service), sort_keys=True) if service else "{}",
        "pushorch.playbook": raw.get("playbook", "p.yml"),
    }
    name = docker_cmd.container_name(raw["service"], digest)
    if raw.get("version"):
        labels["pushorch.version"] = raw["version"]
    labels.update(raw.get("labels") or {})
    return ObservedContainer(
        name,
        name,
        service.image if service else "x",
        "sha256:1",
        raw["state"],
        None,
        labels,
        raw.get("ports") or {},
        "",
        finished=raw.get("finished", ""),
    )


def _observed(spec: Spec, name: str, raw: dict[str, Any] | str) -> ObservedHost:
    if raw == "unreachable":
        return ObservedHost(name=name, reachable=False, error="unreachable")
    assert isinstance(raw, dict)
    docker = raw.get("docker", "running")
    files = {
        path: ObservedFile(
            path,
            True,
            "file",
            hashlib.sha256(f.get("content", "").encode()).hexdigest(),
            f.get("mode", "0644"),
            f.get("owner", "root"),
            f.get("group", "root"),
        )
        for path, f in (raw.get("files") or {}).items()
    }
    containers = [(_container(spec, c), c) for c in raw.get("containers") or []]
    return ObservedHost(
        name=name,
        ungated=frozenset(c.name for c, given in containers if given.get("ungated")),
        maintenance=raw.get("maintenance") or {},
        os_id=raw.get("os", "debian"),
        package_manager=raw.get("package_manager", "apt-get"),
        docker_installed=docker != "absent",
        docker_running=docker == "running",
        containers=tuple(c for c, _ in containers),
        images={ref: "sha256:1" for ref in raw.get("images") or []},
        files=files,
        consul_binary=raw.get("consul", "binary") == "binary",
        consul_agent=raw.get("consul") == "agent",
    )


def _label(action: Action) -> str:
    for attribute in ("service", "path", "image"):
        value = getattr(action, attribute, "")
        if value and not (attribute == "service" and hasattr(action, "path")):
            return str(value)
    return action.subject()


def _line(action: Action) -> str:
    return f"{action.host} {action.kind} {_label(action)} | {action.reason}"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_planner_case(case: Path, tmp_path: Path) -> None:
    doc, problems = load_yaml(str(case))
    assert problems == []
    data = doc.data
    (tmp_path / "inv.ini").write_text(data["inventory"])
    (tmp_path / "p.yml").write_text(data["playbook"])
    for name, text in (data.get("templates") or {}).items():
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "templates" / name).write_text(text)
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")], limit=data.get("limit"))
    observed = {name: _observed(spec, name, raw or {}) for name, raw in data["observed"].items()}
    given = data.get("options") or {}
    memory = Memory(
        now=given.get("now"),
        fleet=fleetstate.parse(f"{given['fleet'].pop('now')}\n{json.dumps(given['fleet'])}")
        if "fleet" in given
        else FleetState(),
        partitioned=frozenset(tuple(p) for p in given.get("partitioned") or []),
        unwitnessed=frozenset(tuple(p) for p in given.get("unwitnessed") or []),
    )
    options = Options(prune=bool(given.get("prune")), playbooks=("p.yml",), memory=memory)
    result = plan(spec, observed, options)
    lines = [_line(a) for a in result.actions]
    for rollout in result.rollouts:
        for index, batch in enumerate(rollout.batches):
            lines.extend(f"batch {index + 1}: {_line(a)}" for a in batch)
    lines.extend(f"after: {_line(a)}" for a in result.after)
    expected = data["expected"]
    assert len(lines) == len(expected), "\n".join(lines)
    for got, want in zip(lines, expected, strict=True):
        assert got == want or (want.endswith("*") and got.startswith(want[:-1])), f"{got!r} != {want!r}"
    assert list(result.notes) == data.get("notes", [])
    if "host_batches" in data:
        assert [list(b) for b in result.host_batches] == data["host_batches"]
        assert (result.max_fail_percentage, result.any_errors_fatal) == tuple(data["play_limits"])
    steps = {a.host: a for r in result.rollouts for batch in r.batches for a in batch}
    for host, fields in (data.get("details") or {}).items():
        _assert_fields(steps[host], fields)
    restarts = {a.host: a for a in result.actions if isinstance(a, RestartContainer)}
    for host, fields in (data.get("restarts") or {}).items():
        _assert_fields(restarts[host], fields)
    for rollout in result.rollouts:
        if rollout.service in (data.get("rollouts") or {}):
            wanted = dict(data["rollouts"][rollout.service])
            assert [[a.host for a in batch] for batch in rollout.batches] == wanted.pop("batches")
            _assert_fields(rollout, wanted)


def _assert_fields(thing: Any, fields: dict[str, Any]) -> None:
    """Each field equals (JSON-normalised); `NAME_has` has the given keys' values; `NAME_contains` holds the
    given run of items; `NAME_count` is a length."""
    for key, want in fields.items():
        if key.endswith("_count"):
            assert len(getattr(thing, key.removesuffix("_count"))) == want, key
        elif key.endswith("_has"):  # the given keys of a dataclass field, the others left alone
            got = json.loads(json.dumps(getattr(thing, key.removesuffix("_has")), default=asdict))
            assert {k: got.get(k) for k in want} == want, f"{key}: {got!r} lacks {want!r}"
        elif key.endswith("_contains"):
            got = list(getattr(thing, key.removesuffix("_contains")))
            assert any(got[i : i + len(want)] == want for i in range(len(got))), f"{key}: {want} not in {got}"
        else:
            got = json.loads(json.dumps(getattr(thing, key), default=asdict))
            assert got == want, f"{key}: {got!r} != {want!r}"


def test_plan_is_deterministic_and_json_able(tmp_path: Path) -> None:
    case = load_yaml(str(FIXTURES / "planner" / "fresh_host.yml"))[0].data
    (tmp_path / "inv.ini").write_text(case["inventory"])
    (tmp_path / "p.yml").write_text(case["playbook"])
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])
    observed = {"w1": _observed(spec, "w1", {"docker": "running"})}
    first, second = plan(spec, observed), plan(spec, observed)
    assert first == second
    document = json.loads(json.dumps(first.to_json()))
    assert document["rollouts"][0]["batches"][0][0]["action"] == "ReplaceContainer"
