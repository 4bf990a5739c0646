"""The KV planner (pure): consul.kv in a playbook against the store as it was read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pushorch.actions import DeleteKv, WriteKv
from pushorch.errors import InputError
from pushorch.load.playbooks import load_spec
from pushorch.observed import ObservedHost, ObservedKey
from pushorch.planner import Options, plan
from pushorch.planner.kv import FLAG, manifest_key
from pushorch.spec import Spec

PLAYBOOK = """
- hosts: web
  vars: {greeting: hello}
  services:
    - name: app
      image: reg/app:1
      consul:
        kv:
          app/greeting: "{{ greeting }} from {{ groups['web'] | length }} hosts"
          app/password: !secret s3cret-value
"""


def _spec(tmp_path: Path, playbook: str = PLAYBOOK) -> Spec:
    (tmp_path / "hosts").write_text("[web]\nw1\nw2\n")
    (tmp_path / "app.yml").write_text(playbook)
    return load_spec([str(tmp_path / "hosts")], (str(tmp_path / "app.yml"),), (), None)[1]


def _observed(kv: dict[str, ObservedKey | None], manifests: dict[str, ObservedKey] | None = None) -> dict:  # type: ignore[type-arg]
    writer = ObservedHost("w1", consul_agent=True, kv=kv, kv_manifests=manifests or {})
    return {"w1": writer, "w2": ObservedHost("w2", consul_agent=True)}


def _kv_steps(spec: Spec, observed: dict, prune: bool = False) -> list:  # type: ignore[type-arg]
    actions = plan(spec, observed, Options(prune=prune, playbooks=("app.yml",))).actions
    return [a for a in actions if isinstance(a, (WriteKv, DeleteKv))]


def _manifest(keys: list[str], index: int = 7) -> ObservedKey:
    return ObservedKey(json.dumps({"keys": keys, "playbook": "app.yml"}, sort_keys=True).encode(), FLAG, index)


def test_new_keys_are_written_create_only_with_a_manifest(tmp_path: Path) -> None:
    steps = _kv_steps(_spec(tmp_path), _observed({"app/greeting": None, "app/password": None}))
    assert [(type(s).__name__, s.host, s.key, s.cas) for s in steps] == [
        ("WriteKv", "w1", "app/greeting", 0),
        ("WriteKv", "w1", "app/password", 0),
        ("WriteKv", "w1", manifest_key("app"), 0),
    ]
    assert steps[0].value == "hello from 2 hosts" and steps[0].flags == FLAG
    assert "s3cret-value" not in json.dumps([s.to_json() for s in steps])  # a secret value is redacted


def test_only_what_changed_is_written_check_and_set(tmp_path: Path) -> None:
    kv = {
        "app/greeting": ObservedKey(b"hello from 2 hosts", FLAG, 11),
        "app/password": ObservedKey(b"old", FLAG, 12),
    }
    steps = _kv_steps(_spec(tmp_path), _observed(kv, {"app": _manifest(["app/greeting", "app/password"])}))
    assert [(s.key, s.cas, s.reason) for s in steps] == [("app/password", 12, "changed")]
    kv["app/password"] = ObservedKey(b"s3cret-value", FLAG, 12)
    assert _kv_steps(_spec(tmp_path), _observed(kv, {"app": _manifest(["app/greeting", "app/password"])})) == []


def test_dropped_keys_stay_without_prune_and_go_with_it(tmp_path: Path) -> None:
    kv = {
        "app/greeting": ObservedKey(b"hello from 2 hosts", FLAG, 11),
        "app/password": ObservedKey(b"s3cret-value", FLAG, 12),
        "app/old": ObservedKey(b"x", FLAG, 13),
        "app/theirs": ObservedKey(b"y", 0, 14),  # changed by someone else since pushorch wrote it
    }
    manifests = {"app": _manifest(["app/greeting", "app/old", "app/password", "app/theirs"])}
    assert _kv_steps(_spec(tmp_path), _observed(kv, manifests)) == []
    steps = _kv_steps(_spec(tmp_path), _observed(kv, manifests), prune=True)
    assert [(type(s).__name__, s.key) for s in steps] == [("DeleteKv", "app/old"), ("WriteKv", manifest_key("app"))]
    assert steps[0].cas == 13 and json.loads(steps[1].value)["keys"] == ["app/greeting", "app/password"]


def test_a_service_gone_with_prune_takes_its_keys_and_manifest(tmp_path: Path) -> None:
    other = PLAYBOOK.replace("name: app", "name: other").replace("app/", "other/")
    kv = {"app/greeting": ObservedKey(b"v", FLAG, 3), "other/greeting": None, "other/password": None}
    observed = _observed(kv, {"app": _manifest(["app/greeting"], 4)})
    steps = [s for s in _kv_steps(_spec(tmp_path, other), observed, prune=True) if s.service == "app"]
    assert [(type(s).__name__, s.key, s.cas) for s in steps] == [
        ("DeleteKv", "app/greeting", 3),
        ("DeleteKv", manifest_key("app"), 4),
    ]


def test_no_agent_read_means_no_kv_steps(tmp_path: Path) -> None:
    observed = {"w1": ObservedHost("w1"), "w2": ObservedHost("w2")}
    assert _kv_steps(_spec(tmp_path), observed) == []
    assert _kv_steps(_spec(tmp_path), {"w1": replace(observed["w1"], kv={})}) != []


def test_bad_keys_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pushorch/ is pushorch's own"):
        _spec(tmp_path, PLAYBOOK.replace("app/greeting", "pushorch/locks/fleet"))
