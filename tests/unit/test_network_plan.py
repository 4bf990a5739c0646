"""Networks in the plan (pure): created where missing, joined at run, removed only by --prune."""

from __future__ import annotations

from pathlib import Path

from pushorch.actions import CreateNetwork, RemoveNetwork, ReplaceContainer
from pushorch.load.playbooks import load_spec
from pushorch.observed import ObservedHost
from pushorch.planner import Options, plan

PLAYBOOK = """
- hosts: web
  networks:
    - {name: appnet, internal: true, subnet: 10.123.0.0/24, labels: {team: a}}
  services:
    - name: app
      image: reg/app:1
      networks: [{name: appnet, aliases: [app]}, {name: backplane, aliases: [app-b]}]
"""


def _plan(tmp_path: Path, networks: dict[str, str], prune: bool = False):  # type: ignore[no-untyped-def]
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "net.yml").write_text(PLAYBOOK)
    spec = load_spec([str(tmp_path / "hosts")], (str(tmp_path / "net.yml"),), (), None)[1]
    seen = ObservedHost("w1", docker_installed=True, docker_running=True, networks=networks)
    return plan(spec, {"w1": seen}, Options(prune=prune, playbooks=("net.yml",)))


def test_a_missing_network_is_created_labelled_before_the_container_joins_it(tmp_path: Path) -> None:
    result = _plan(tmp_path, {"bridge": "", "backplane": ""})
    created = [a for a in result.actions if isinstance(a, CreateNetwork)]
    assert [(a.name, a.internal, a.subnet) for a in created] == [("appnet", True, "10.123.0.0/24")]
    owner = str(tmp_path / "net.yml")  # outside a repository: its absolute path (load/owner.py)
    assert dict(created[0].labels) == {"team": "a", "pushorch.network": "appnet", "pushorch.playbook": owner}
    step = next(a for b in result.rollouts[0].batches for a in b if isinstance(a, ReplaceContainer))
    argv = list(step.argv)
    assert argv[argv.index("--network") : argv.index("--network") + 4] == [
        "--network",
        "appnet",
        "--network-alias",
        "app",
    ]
    assert step.connect == (("backplane", ("app-b",)),)


def test_networks_are_removed_only_with_prune_and_only_a_given_playbooks(tmp_path: Path) -> None:
    seen = {"appnet": "net.yml", "backplane": "", "oldnet": "net.yml", "theirs": "other.yml"}
    assert not [a for a in _plan(tmp_path, seen).actions if isinstance(a, RemoveNetwork)]
    pruned = [a.name for a in _plan(tmp_path, seen, prune=True).actions if isinstance(a, RemoveNetwork)]
    assert pruned == ["oldnet"]  # not one it did not create, nor another playbook's, nor a declared one


def test_a_network_a_kept_container_joins_is_not_pruned(tmp_path: Path) -> None:
    """Issue 27 item 8: pruning a network a stopped (kept) container joins made `rollback` fail with
    "network not found"; and facts read the networks of stopped containers too."""
    from dataclasses import replace

    from pushorch.facts import container

    kept = container(
        {
            "Id": "k",
            "Name": "/api-old",
            "State": {"Status": "exited", "FinishedAt": "2026-12-01T00:00:00Z"},
            "Config": {"Labels": {"pushorch.service": "api"}},
            "NetworkSettings": {"Networks": {"oldnet": {}}},
            "HostConfig": {"NetworkMode": "oldnet"},
        }
    )
    assert kept.networks == ("oldnet",)
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "net.yml").write_text(PLAYBOOK)
    spec = load_spec([str(tmp_path / "hosts")], (str(tmp_path / "net.yml"),), (), None)[1]
    seen = ObservedHost("w1", docker_installed=True, docker_running=True, networks={"oldnet": "net.yml"})
    options = Options(prune=True, playbooks=("net.yml",))
    assert [a.name for a in plan(spec, {"w1": seen}, options).actions if isinstance(a, RemoveNetwork)] == ["oldnet"]
    joined = replace(seen, containers=(kept,))
    assert not [a for a in plan(spec, {"w1": joined}, options).actions if isinstance(a, RemoveNetwork)]
