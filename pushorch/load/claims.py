"""A service another playbook still declares is refused before anything runs (exit 3).

Two playbooks declaring one service name and given together are refused by the loader
(playbooks._names_of_two_playbooks). Applied one at a time, each would take the other's containers
for its own: replace them with its spec, count them for its placement, adopt them. What tells a
service that *moved* into this playbook (adopted, planner/plan._adoptions) from one *declared twice*
is the playbook that owns its containers on the hosts: if that file is still there and still
declares the name, two playbooks claim it — unless it is a copy of this one (the same file name
declaring the same services: another checkout, a directory moved outside git). Owners are read
from the hosts (labels, the owners record), so this runs after the first observe; it touches nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from pushorch.errors import PlaybookError, Problem
from pushorch.load.owner import owner, repository_root
from pushorch.load.yamlfile import load_yaml
from pushorch.observed import ObservedHost
from pushorch.planner.labels import owned_by
from pushorch.spec import Spec


def foreign_owners(spec: Spec, observed: Mapping[str, ObservedHost]) -> dict[tuple[str, str, str], list[str]]:
    """(service, this playbook's owner, the owner its containers carry) -> hosts, for every declared
    service whose containers on a host belong to another playbook."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for name, host in spec.hosts.items():
        seen = observed.get(name)
        if seen is None:
            continue
        for _, service, source in host.declared():
            owned = seen.owner_of(service.name)
            if owned and source and not owned_by(owned, (source,)):
                found.setdefault((service.name, source, owned), []).append(name)
    return found


def refuse_claimed(spec: Spec, observed: Mapping[str, ObservedHost]) -> None:
    """Raise PlaybookError naming both declarations of every service another playbook still claims."""
    problems = []
    for (service, source, owned), hosts in sorted(foreign_owners(spec, observed).items()):
        mine = [p for p in spec.playbooks if owner(p) == source]
        theirs = _declaration(_paths_of(owned, spec.playbooks), service)
        if theirs is None or (mine and _a_copy(theirs.path, mine[0])):
            continue  # moved (the playbook that made it no longer declares it), or this very playbook copied
        ours = _declaration(mine, service) or Problem(source)
        message = (
            f"service {service!r} is also declared in {theirs.path}:{theirs.line}:{theirs.col}, whose "
            f"containers run it on {', '.join(sorted(hosts))}: a service name belongs to one playbook "
            "(rename one, or remove it from the other playbook to move it here)"
        )
        problems.append(Problem(ours.path, ours.line, ours.col, ours.key, message))
    if problems:
        raise PlaybookError(problems)


def _a_copy(theirs: str, mine: str) -> bool:
    """Another checkout or a moved directory of the same playbook, not another playbook: the same file
    name declaring the same services."""
    return os.path.basename(theirs) == os.path.basename(mine) and _services(theirs) == _services(mine)


def _services(path: str) -> set[str]:
    doc, problems = load_yaml(path)
    plays = doc.data if not problems and isinstance(doc.data, list) else []
    return {
        str(item.get("name"))
        for play in plays
        if isinstance(play, dict) and isinstance(play.get("services"), list)
        for item in play["services"]
        if isinstance(item, dict)
    }


def _paths_of(owned: str, playbooks: Sequence[str]) -> list[str]:
    """Where the owner's playbook is on this controller: an absolute owner is its path; a path from a
    repository's root is looked up in the repositories of this run's playbooks."""
    if os.path.isabs(owned):
        return [owned]
    roots = {repository_root(p) for p in playbooks}
    return [os.path.join(root, owned) for root in sorted(r for r in roots if r)]


def _declaration(paths: Iterable[str], service: str) -> Problem | None:
    """Where the first of `paths` that exists declares `service` (a play's `services[].name`)."""
    for path in paths:
        if not os.path.isfile(path):
            continue
        doc, problems = load_yaml(path)
        if problems or not isinstance(doc.data, list):
            continue
        for index, play in enumerate(doc.data):
            services = play.get("services") if isinstance(play, dict) else None
            for at, item in enumerate(services if isinstance(services, list) else []):
                if isinstance(item, dict) and item.get("name") == service:
                    return doc.problem((index, "services", at, "name"), "")
    return None
