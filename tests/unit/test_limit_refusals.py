"""A limit that leaves no host, and --prune with --limit, are refused before anything connects
(the inventory's address is one no test host has: a connection attempt would hang or fail as 4)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "hosts").write_text("[web]\nweb1 ansible_host=192.0.2.1\n")
    (tmp_path / "p.yml").write_text("- hosts: web\n  services:\n    - name: a\n      image: x\n")
    return str(tmp_path / "hosts"), str(tmp_path / "p.yml")


@pytest.mark.parametrize("command", ["apply", "plan", "check"])
def test_a_limit_that_matches_no_host_is_bad_input(run_cli, inputs: tuple[str, str], command: str) -> None:  # type: ignore[no-untyped-def]
    """Found reading the code (issue 27, item 10): it exited 0 having done nothing."""
    inventory, playbook = inputs
    result = run_cli(command, "-i", inventory, "-l", "db*", playbook)
    assert result.status == 3, result.out + result.err
    assert "--limit" in result.err and "'db*' matches no host of the inventory" in result.err


def test_prune_with_a_limit_is_refused(run_cli, inputs: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Seen on the lab (issue 27, item 3): a limited --prune deleted Consul KV keys cluster-wide."""
    inventory, playbook = inputs
    result = run_cli("apply", "--prune", "-i", inventory, "-l", "web1", playbook)
    assert result.status == 2 and "--prune cannot be combined with --limit" in result.err, result.err
