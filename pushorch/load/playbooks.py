"""Playbooks -> Spec: parse, validate the structure, then render and validate each play per host.

Validation runs twice on purpose. Once on the raw play, with errors under templated strings
ignored, so structural mistakes are reported even for plays that match no host; then per host
after rendering, so `port: "{{ app_port }}"` is checked as the int it becomes. Every problem
from every file and host is collected and raised together.
"""

from __future__ import annotations

import graphlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pydantic

from pushorch.ansible import tags
from pushorch.ansible.inventory import Inventory
from pushorch.ansible.load_inventory import load_inventory
from pushorch.ansible.patterns import select
from pushorch.errors import InputError, Problem
from pushorch.load import compose, compose_file, kube
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.extravars import parse_extra_vars
from pushorch.load.render import PlaySource, locate, problem_message, render_hosts
from pushorch.load.yamlfile import Document, load_yaml, load_yaml_all
from pushorch.spec import HostSpec, Play, Spec
from pushorch.templates import (
    Templar,
    contains_template,
    is_template,
)

# Keys rendered per host only when used (vars are the context itself; `when` is an expression).


def load_spec(
    inventory_sources: Sequence[str],
    playbooks: Sequence[str],
    extra_vars: Sequence[str] = (),
    limit: str | None = None,
    context: LoadContext = NO_CONTEXT,
) -> tuple[Inventory, Spec]:
    """Load everything; raises InputError listing every problem found (nothing touched). `context`:
    what the run brings from outside the files (vault passwords, runners, --tags/--skip-tags)."""
    problems: list[Problem] = []
    inventory: Inventory | None = None
    try:
        inventory = load_inventory(inventory_sources, context)
    except InputError as exc:
        problems.extend(exc.problems)
    extra, found = parse_extra_vars(list(extra_vars), context)
    problems.extend(found)
    plays = _read_playbooks(playbooks, problems, context)
    if inventory is None:
        raise InputError(problems)
    # Render even when the structure check found problems: the per-host pass finds more
    # (undefined variables, missing templates) and repeats of the same problem merge.
    limited = _limit(inventory, limit, problems)
    problems.extend(_dependency_problems(plays))
    problems.extend(_names_of_two_playbooks(plays))
    hosts = render_hosts(inventory, plays, extra, limited, problems)
    problems.extend(_shared_host_ports(plays, hosts))
    problems.extend(_shared_routes(plays, hosts))
    if problems:
        raise InputError(_merge_hosts(problems))
    # Hosts outside --limit, rendered for placement only: their problems are not this run's.
    outside = {}
    if limited is not None and any(source.has_replicas for source in plays):
        others = set(inventory.hosts) - limited
        outside = render_hosts(inventory, plays, extra, others, []) if others else {}
    chosen = context.selection
    return inventory, Spec(
        playbooks=tuple(playbooks),
        hosts={h: tags.select(s, chosen) for h, s in hosts.items()},
        outside=outside,
    )


def _names_of_two_playbooks(plays: list[PlaySource]) -> list[Problem]:
    """A service name belongs to one playbook: two playbooks declaring it would each take the other's
    containers for theirs (replace them, remove them as placed elsewhere). Both places are named."""
    first: dict[str, Problem] = {}
    problems = []
    for play in plays:
        for index, service in enumerate(play.raw.get("services") or []):
            if not (isinstance(service, dict) and isinstance(service.get("name"), str)):
                continue
            here = play.doc.problem((play.index, "services", index, "name"), "")
            seen = first.setdefault(service["name"], here)
            if seen.path != here.path:
                message = (
                    f"service {service['name']!r} is also declared in {seen.path}:{seen.line}:{seen.col}: "
                    "a service name belongs to one playbook (rename one, or move it into one playbook)"
                )
                problems.append(Problem(here.path, here.line, here.col, here.key, message))
    return problems


def _shared_host_ports(plays: list[PlaySource], hosts: Mapping[str, HostSpec]) -> list[Problem]:
    """Two services that publish one host port (same protocol, overlapping address) on one host: the
    second `docker run` would fail mid-rollout ("port is already allocated"). start-first services
    publish Docker-chosen ports, so they hold none."""
    where: dict[str, Problem] = {}
    for play in plays:
        for index, service in enumerate(play.raw.get("services") or []):
            if isinstance(service, dict) and isinstance(service.get("name"), str):
                where.setdefault(service["name"], play.doc.problem((play.index, "services", index, "ports"), ""))
    clashes: dict[tuple[str, str], list[str]] = {}  # (later service, earlier service) -> hosts
    for host in hosts.values():
        held: dict[tuple[str, int], list[tuple[str, str]]] = {}  # (protocol, port) -> [(service, address)]
        for rendered in host.plays:
            for service in rendered.services:
                if rendered.policy_for(service).order == "start-first" or service.name in host.excluded:
                    continue
                for port in service.ports:
                    if port.host is None:
                        continue
                    bind = port.bind or "0.0.0.0"
                    holders = held.setdefault((port.protocol, port.host), [])
                    for other, address in holders:
                        if other != service.name and (address == bind or "0.0.0.0" in (address, bind)):
                            clashes.setdefault((service.name, other), []).append(host.name)
                    holders.append((service.name, bind))
    problems = []
    for (service, other), on in sorted(clashes.items()):
        at = where.get(service) or Problem("playbooks")
        message = f"publishes a host port that {other!r} publishes too (hosts {', '.join(sorted(on))})"
        problems.append(Problem(at.path, at.line, at.col, at.key, message))
    return problems


def _shared_routes(plays: list[PlaySource], hosts: Mapping[str, HostSpec]) -> list[Problem]:
    """Two services behind the ingress that claim one hostname and path prefix: the proxy would send
    every such request to one of them."""
    where: dict[str, Problem] = {}
    for play in plays:
        for index, service in enumerate(play.raw.get("services") or []):
            if isinstance(service, dict) and isinstance(service.get("name"), str):
                where.setdefault(service["name"], play.doc.problem((play.index, "services", index, "ingress"), ""))
    claimed: dict[tuple[str, str], str] = {}
    clashes: dict[str, str] = {}  # later service -> the message
    for host in hosts.values():
        for rendered in host.plays:
            for service in rendered.services:
                if service.ingress is None:
                    continue
                for name in service.ingress.hosts:
                    other = claimed.setdefault((name, service.ingress.path), service.name)
                    if other != service.name:
                        clashes[service.name] = (
                            f"ingress: {name}{service.ingress.path} is claimed by {other!r} too "
                            "(give one of them another hostname or path)"
                        )
    problems = []
    for service, message in sorted(clashes.items()):
        at = where.get(service) or Problem("playbooks")
        problems.append(Problem(at.path, at.line, at.col, at.key, message))
    return problems


def _dependency_problems(plays: list[PlaySource]) -> list[Problem]:
    """`depends_on` names a service of the given playbooks, and the dependencies form no cycle."""
    where: dict[str, tuple[PlaySource, int]] = {}
    needs: dict[str, list[str]] = {}
    for play in plays:
        for index, service in enumerate(play.raw.get("services") or []):
            if isinstance(service, dict) and isinstance(service.get("name"), str):
                where.setdefault(service["name"], (play, index))
                wanted = service.get("depends_on") or []
                needs.setdefault(service["name"], []).extend(str(d) for d in wanted if isinstance(wanted, list))
    problems = []

    def problem(name: str, message: str) -> Problem:
        play, index = where[name]
        return play.doc.problem((play.index, "services", index, "depends_on"), message)

    for name, wanted in needs.items():
        for missing in [d for d in wanted if d not in needs]:
            problems.append(problem(name, f"depends on {missing!r}, which no play of these playbooks declares"))
    try:
        graphlib.TopologicalSorter({n: [d for d in ds if d in needs] for n, ds in needs.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = [str(n) for n in exc.args[1]][::-1]  # graphlib lists it against the arrows
        problems.append(problem(cycle[0], "depends_on makes a cycle: " + " -> ".join(cycle)))
    return problems


_PER_HOST = re.compile(r"^(?P<text>.*) \((?P<how>[a-z ]*host) (?P<host>[^()]+)\)$")


def _merge_hosts(problems: list[Problem]) -> list[Problem]:
    """One line per problem, naming every host it occurred for: '... (hosts web-1, web-2)'."""
    merged: dict[Problem, list[str]] = {}
    for problem in problems:
        match = _PER_HOST.match(problem.message)
        key = replace(problem, message=f"{match['text']} ({match['how']}") if match else problem
        merged.setdefault(key, []).extend([match["host"]] if match else [])
    out = []
    for key, hosts in merged.items():
        if hosts:
            label = "s " + ", ".join(dict.fromkeys(hosts)) if len(set(hosts)) > 1 else " " + hosts[0]
            key = replace(key, message=f"{key.message}{label})")
        out.append(key)
    return out


def _limit(inventory: Inventory, limit: str | None, problems: list[Problem]) -> set[str] | None:
    if not limit:
        return None
    try:
        selected = set(select(inventory, limit, read_file=_read_limit_file))
    except (OSError, ValueError, re.error) as exc:
        problems.append(Problem("--limit", 0, 0, "", f"{limit!r}: {exc}"))
        return set()
    if not selected:  # ansible-playbook: "--limit leaves us with no hosts to target", non-zero
        problems.append(Problem("--limit", 0, 0, "", f"{limit!r} matches no host of the inventory: nothing to do"))
    return selected


def _read_limit_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_playbooks(paths: Sequence[str], problems: list[Problem], context: LoadContext) -> list[PlaySource]:
    """The plays of every playbook, in order; the compose files among them are one project, merged in
    the order given (as `docker compose -f a -f b`), its plays last; the Kubernetes manifests among
    them (files of `---`-separated objects) are read together, their plays before the compose ones."""
    plays: list[PlaySource] = []
    composed: list[Document] = []
    manifests: list[Document] = []
    for path in paths:
        docs, found = load_yaml_all(path, context)
        problems.extend(found)
        if found:
            continue
        if docs and all(kube.is_manifest(doc.data) for doc in docs):
            manifests.extend(docs)
            continue
        if len(docs) > 1:  # a playbook or a compose file is one document
            problems.append(docs[1].problem((), "expected one YAML document, found several"))
            continue
        doc = docs[0] if docs else Document(path, None)
        if compose_file.is_compose(doc.data):
            composed.append(doc)
        else:
            plays.extend(_plays_of(doc, path, problems, context))
    if manifests:
        mapped_manifests, found = kube.to_plays(manifests, context)
        problems.extend(found)
        plays.extend(_plays_of(mapped_manifests, mapped_manifests.path, problems, context) if not found else [])
    if composed:
        project, found = compose_file.project_of(composed, context)
        problems.extend(found)
        if project is not None:
            mapped, found = compose.to_plays(project, context)
            problems.extend(found)
            plays.extend(_plays_of(mapped, mapped.path, problems, context) if mapped.data else [])
    return plays


def _plays_of(doc: Document, path: str, problems: list[Problem], context: LoadContext) -> list[PlaySource]:
    if not isinstance(doc.data, list) or not doc.data:
        problems.append(doc.problem((), "a playbook is a non-empty list of plays"))
        return []
    templar = Templar(os.path.dirname(os.path.abspath(path)))
    out = []
    for index, raw in enumerate(doc.data):
        if not isinstance(raw, dict):
            problems.append(doc.problem((index,), "a play is a mapping (name, hosts, vars, tasks, services, ...)"))
            continue
        problems.extend(_structure_problems(doc, index, raw))
        vars_files = _read_vars_files(doc, index, raw, os.path.dirname(path), problems, context)
        out.append(PlaySource(doc, index, raw, templar, vars_files))
    return out


def _structure_problems(doc: Document, index: int, raw: dict[str, Any]) -> list[Problem]:
    """Schema errors of the raw play, except those under a value that is still a template."""
    try:
        Play.model_validate(raw)
    except pydantic.ValidationError as exc:
        found = []
        for error in exc.errors():
            keypath, value = locate(raw, error["loc"])
            if error["type"] != "extra_forbidden" and contains_template(value):
                continue
            found.append(doc.problem((index, *keypath), problem_message(error, raw, keypath)))
        return found
    return []


def _read_vars_files(
    doc: Document, index: int, raw: dict[str, Any], root: str, problems: list[Problem], context: LoadContext
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    files = raw.get("vars_files") or []
    if not isinstance(files, list):
        return merged  # the structure check reports it
    for position, name in enumerate(files):
        if not isinstance(name, str) or is_template(name):
            problems.append(doc.problem((index, "vars_files", position), "vars_files entries are plain file paths"))
            continue
        vdoc, found = load_yaml(os.path.join(root, name), context)
        problems.extend(found)
        if not found and vdoc.data is not None and not isinstance(vdoc.data, dict):
            problems.append(vdoc.problem((), "a vars file must hold a mapping"))
        elif not found and vdoc.data:
            merged.update(vdoc.data)
    return merged
