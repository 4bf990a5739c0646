"""--tags / --skip-tags as Ansible applies them (always, never, all, tagged, untagged, play tags)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushorch.ansible.tags import Selection
from pushorch.load.context import LoadContext
from pushorch.load.playbooks import load_spec

PLAYBOOK = """
- hosts: web
  tags: [web]
  tasks:
    - {name: conf, template: {src: a.j2, dest: /etc/a.conf}, tags: conf}
    - {name: pkg, command: ["true"], tags: "pkg,setup"}
    - {name: always, command: ["true"], tags: [always]}
    - {name: debug, command: ["true"], tags: [never, debug]}
  services:
    - {name: app, image: reg/app:1}
- hosts: web
  tasks:
    - {name: untagged, command: ["true"]}
  services:
    - {name: other, image: reg/other:1}
"""


def _run(tmp_path: Path, selection: Selection) -> tuple[list[str], list[str], dict[tuple[int, int], str]]:
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "a.j2").write_text("x={{ inventory_hostname }}\n")
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    spec = load_spec(
        [str(tmp_path / "hosts")], (str(tmp_path / "site.yml"),), (), None, LoadContext(selection=selection)
    )[1]
    host = spec.hosts["w1"]
    tasks = [t.name or "" for p in host.plays for t in p.tasks]
    services = [s.name for p in host.plays for s in p.services]
    return tasks, services, dict(host.files)


@pytest.mark.parametrize(
    ("selection", "tasks", "services"),
    [
        (Selection(), ["conf", "pkg", "always", "untagged"], ["app", "other"]),
        (Selection(("conf",)), ["conf", "always"], []),
        (Selection(("web",)), ["conf", "pkg", "always", "debug"], ["app"]),  # play tags reach tasks and services
        (Selection(("debug",)), ["always", "debug"], []),  # `never` runs when one of its tags is asked
        (Selection(("never",)), ["always", "debug"], []),
        (Selection(("untagged",)), ["always", "untagged"], ["other"]),
        (Selection(("tagged",)), ["conf", "pkg", "always"], ["app"]),
        (Selection(skip=("setup",)), ["conf", "always", "untagged"], ["app", "other"]),
        (Selection(("conf",), ("always",)), ["conf"], []),
        (Selection(("all",), ("web",)), ["untagged"], ["other"]),
    ],
)
def test_selection(tmp_path: Path, selection: Selection, tasks: list[str], services: list[str]) -> None:
    got_tasks, got_services, _ = _run(tmp_path, selection)
    assert (got_tasks, got_services) == (tasks, services)


def test_rendered_files_follow_their_tasks(tmp_path: Path) -> None:
    _, _, files = _run(tmp_path, Selection(("conf",)))
    assert files == {(0, 0): "x=w1\n"}  # still the template's task, at its new index
