"""Owners (issue 27 item 2): a stable identity per playbook, not its basename; adoption of a moved service."""

from __future__ import annotations

from pathlib import Path

from pushorch.actions import AdoptService, RemoveContainer
from pushorch.load.owner import owner
from pushorch.load.playbooks import load_spec
from pushorch.planner import Options, plan
from pushorch.planner.labels import owned_by
from tests.unit.test_planner_golden import _observed


def test_an_owner_is_the_path_from_the_repository_root_else_the_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert owner(str(tmp_path / "a" / "site.yml")) != owner(str(tmp_path / "b" / "site.yml"))  # not one owner
    assert owner(str(tmp_path / "a" / "site.yml")) == str(tmp_path / "a" / "site.yml")
    repo = tmp_path / "clone"
    (repo / ".git").mkdir(parents=True)
    (repo / "playbooks").mkdir()
    assert owner(str(repo / "playbooks" / "site.yml")) == "playbooks/site.yml"  # the same on every clone
    assert owned_by("site.yml", ["playbooks/site.yml"])  # a label from before: still this playbook's
    assert not owned_by("other/site.yml", ["playbooks/site.yml"]) and not owned_by("", ["x"])


def _spec(tmp_path: Path, name: str, services: str):  # type: ignore[no-untyped-def]
    (tmp_path / "inv.ini").write_text("[web]\nw1\n")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"- hosts: web\n  services:\n{services}")
    return str(path), load_spec([str(tmp_path / "inv.ini")], [str(path)])[1]


def test_two_playbooks_of_one_basename_are_two_owners_for_prune(tmp_path: Path) -> None:
    a_path, a = _spec(tmp_path, "a/site.yml", "    - {name: api, image: 'reg/api:1'}\n")
    b_path = str(tmp_path / "b" / "site.yml")
    seen = _observed(
        a,
        "w1",
        {
            "images": ["reg/api:1"],
            "containers": [
                {"service": "api", "state": "running", "playbook": owner(a_path)},
                {"service": "cache", "state": "running", "playbook": owner(b_path)},  # b/site.yml's
            ],
        },
    )
    pruned = plan(a, {"w1": seen}, Options(prune=True, playbooks=(owner(a_path),)))
    assert not [x for x in (*pruned.actions, *pruned.after) if isinstance(x, RemoveContainer)]


def test_a_service_moved_to_another_playbook_is_adopted_and_its_old_playbook_no_longer_prunes_it(
    tmp_path: Path,
) -> None:
    a_path = str(tmp_path / "a.yml")
    b_path, b = _spec(tmp_path, "b.yml", "    - {name: api, image: 'reg/api:1'}\n")
    labelled_a = {
        "images": ["reg/api:1"],
        "containers": [{"service": "api", "state": "running", "playbook": owner(a_path)}],
    }
    seen = _observed(b, "w1", labelled_a)
    [adopt] = [x for x in plan(b, {"w1": seen}).actions if isinstance(x, AdoptService)]
    assert (adopt.service, adopt.owner) == ("api", owner(b_path))
    # Once adopted (the host's owners record), a.yml's --prune (a.yml declares something else) leaves it.
    _, a = _spec(tmp_path, "a.yml", "    - {name: other, image: 'reg/o:1'}\n")
    adopted = _observed(a, "w1", labelled_a)
    from dataclasses import replace

    after = plan(
        a, {"w1": replace(adopted, owners={"api": owner(b_path)})}, Options(prune=True, playbooks=(owner(a_path),))
    )
    assert not [x for x in (*after.actions, *after.after) if isinstance(x, RemoveContainer) and x.service == "api"]
    before = plan(a, {"w1": adopted}, Options(prune=True, playbooks=(owner(a_path),)))
    assert [x.service for x in before.after if isinstance(x, RemoveContainer)] == ["api"]  # what it did before


def test_a_service_another_playbook_declares_is_refused_a_copy_of_this_one_is_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from pushorch.errors import PlaybookError
    from pushorch.load.claims import refuse_claimed
    from pushorch.load.playbooks import load_spec
    from tests.unit.test_planner_golden import _observed

    (tmp_path / "inv.ini").write_text("[web]\nw1\n")
    for directory in ("here", "copy", "other"):
        (tmp_path / directory).mkdir()
    play = "- hosts: web\n  services: [{name: redis, image: reg/redis:7}]\n"
    (tmp_path / "here" / "cache.yml").write_text(play)
    (tmp_path / "copy" / "cache.yml").write_text(play.replace(":7", ":6"))  # another checkout, older
    (tmp_path / "other" / "app.yml").write_text(play + "- hosts: web\n  services: [{name: api, image: reg/api:1}]\n")
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "here" / "cache.yml")])

    def owned_by(path: str):  # type: ignore[no-untyped-def]
        running = {"service": "redis", "state": "running", "playbook": str(path)}
        return {"w1": _observed(spec, "w1", {"containers": [running]})}

    refuse_claimed(spec, owned_by(tmp_path / "copy" / "cache.yml"))  # the same playbook elsewhere: adopted
    refuse_claimed(spec, owned_by(tmp_path / "gone" / "cache.yml"))  # its owner's file is gone: moved
    with pytest.raises(PlaybookError) as refused:
        refuse_claimed(spec, owned_by(tmp_path / "other" / "app.yml"))
    assert f"also declared in {tmp_path / 'other' / 'app.yml'}:2:" in str(refused.value)
    assert str(refused.value).startswith(f"{tmp_path / 'here' / 'cache.yml'}:2:")
