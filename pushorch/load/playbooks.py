"""Playbooks -> Spec: parse, validate the structure, then render and validate each play per host.

Validation runs twice on purpose. Once on the raw play, with errors under templated strings
ignored, so structural mistakes are reported even for plays that match no host; then per host
after rendering, so `port: "{{ app_port }}"` is checked as the int it becomes. Every problem
from every file and host is collected and raised together.
"""

from __future__ import annotations

import difflib
import graphlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pydantic

from pushorch.ansible import tags
from pushorch.ansible.inventory import Inventory
from pushorch.ansible.load_inventory import load_inventory
from pushorch.ansible.patterns import select
from pushorch.errors import InputError, Problem
from pushorch.load import build_context
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.extravars import parse_extra_vars
from pushorch.load.yamlfile import Document, KeyPath, load_yaml
from pushorch.spec import HostSpec, Play, Spec, schema_keys
from pushorch.templates import (
    LazyHostvars,
    LazyVars,
    Templar,
    TemplateFailure,
    contains_template,
    is_template,
    to_bool,
)

# Keys rendered per host only when used (vars are the context itself; `when` is an expression).
_NOT_RENDERED = ("vars", "vars_files", "hosts")
_KEYS = sorted(schema_keys())


@dataclass(slots=True)
class _PlaySource:
    doc: Document
    index: int
    raw: dict[str, Any]
    templar: Templar
    vars_files: dict[str, Any]

    @property
    def has_replicas(self) -> bool:
        services = self.raw.get("services")
        return isinstance(services, list) and any(isinstance(s, dict) and "replicas" in s for s in services)


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
    plays: list[_PlaySource] = []
    for path in playbooks:
        plays.extend(_read_playbook(path, problems, context))
    if inventory is None:
        raise InputError(problems)
    # Render even when the structure check found problems: the per-host pass finds more
    # (undefined variables, missing templates) and repeats of the same problem merge.
    limited = _limit(inventory, limit, problems)
    problems.extend(_dependency_problems(plays))
    hosts = _render_hosts(inventory, plays, extra, limited, problems)
    if problems:
        raise InputError(_merge_hosts(problems))
    # Hosts outside --limit, rendered for placement only: their problems are not this run's.
    outside = {}
    if limited is not None and any(source.has_replicas for source in plays):
        others = set(inventory.hosts) - limited
        outside = _render_hosts(inventory, plays, extra, others, []) if others else {}
    chosen = context.selection
    return inventory, Spec(
        playbooks=tuple(playbooks),
        hosts={h: tags.select(s, chosen) for h, s in hosts.items()},
        outside=outside,
    )


def _built(play: Play, source: _PlaySource, problems: list[Problem]) -> Play:
    """Services built from a context: the context made absolute, the image tagged by its digest."""
    if not any(s.build for s in play.services):
        return play
    services = []
    for index, service in enumerate(play.services):
        if service.build is None:
            services.append(service)
            continue
        context = os.path.join(source.templar.root, service.build.context)
        try:
            digest = build_context.digest(context, service.build.dockerfile, service.build.args)
        except OSError as exc:
            where = (source.index, "services", index, "build", "context")
            problems.append(
                source.doc.problem(where, f"cannot read the build context {context}: {exc.strerror or exc}")
            )
            services.append(service)
            continue
        build = service.build.model_copy(update={"context": context})
        services.append(service.model_copy(update={"image": f"{service.image}:ctx-{digest[:12]}", "build": build}))
    return play.model_copy(update={"services": services})


def _dependency_problems(plays: list[_PlaySource]) -> list[Problem]:
    """`depends_on` names a service of the given playbooks, and the dependencies form no cycle."""
    where: dict[str, tuple[_PlaySource, int]] = {}
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
        return set(select(inventory, limit, read_file=_read_limit_file))
    except (OSError, ValueError, re.error) as exc:
        problems.append(Problem("--limit", 0, 0, "", f"{limit!r}: {exc}"))
        return set()


def _read_limit_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_playbook(path: str, problems: list[Problem], context: LoadContext) -> list[_PlaySource]:
    doc, found = load_yaml(path, context)
    problems.extend(found)
    if found:
        return []
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
        out.append(_PlaySource(doc, index, raw, templar, vars_files))
    return out


def _structure_problems(doc: Document, index: int, raw: dict[str, Any]) -> list[Problem]:
    """Schema errors of the raw play, except those under a value that is still a template."""
    try:
        Play.model_validate(raw)
    except pydantic.ValidationError as exc:
        found = []
        for error in exc.errors():
            keypath, value = _locate(raw, error["loc"])
            if error["type"] != "extra_forbidden" and contains_template(value):
                continue
            found.append(doc.problem((index, *keypath), _message(error, raw, keypath)))
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


def _render_hosts(
    inventory: Inventory,
    plays: list[_PlaySource],
    extra: dict[str, Any],
    limited: set[str] | None,
    problems: list[Problem],
) -> dict[str, HostSpec]:
    groups = inventory.groups_dict()
    all_hosts = inventory.group_hosts("all")
    first_templar = plays[0].templar if plays else Templar(os.getcwd())
    hostvars = LazyHostvars(all_hosts, lambda h: LazyVars(_host_context(inventory, h, extra), first_templar))
    by_host: dict[str, tuple[list[Play], dict[tuple[int, int], str], list[str]]] = {}
    excluded: dict[str, set[str]] = {}
    for source in plays:
        targets = _play_hosts(inventory, source, extra, problems)
        if limited is not None:
            targets = [h for h in targets if h in limited]
        for host in targets:
            context = _context(inventory, host, source, extra, groups, hostvars, targets)
            rendered = _render_play(source, host, context, problems)
            if rendered is None:
                continue
            rendered = _built(rendered, source, problems)
            plays_of_host, files, sources = by_host.setdefault(host, ([], {}, []))
            # Files are keyed by the play's index among this host's plays, as the planner reads them.
            files.update(_render_files(source, len(plays_of_host), rendered, host, context, problems))
            plays_of_host.append(rendered)
            sources.append(os.path.basename(source.doc.path))
            excluded.setdefault(host, set()).update(_placement_excluded(inventory, source, rendered, host, problems))
    order = [h for h in all_hosts if h in by_host]
    return {
        h: HostSpec(
            h,
            _host_context(inventory, h, extra),
            tuple(by_host[h][0]),
            by_host[h][1],
            tuple(by_host[h][2]),
            frozenset(excluded.get(h, set())),
        )
        for h in order
    }


def _placement_excluded(
    inventory: Inventory, source: _PlaySource, play: Play, host: str, problems: list[Problem]
) -> set[str]:
    """Services whose placement.hosts pattern leaves this host out."""
    out = set()
    for index, service in enumerate(play.services):
        if not (service.placement and service.placement.hosts):
            continue
        try:
            if host not in select(inventory, service.placement.hosts):
                out.add(service.name)
        except (ValueError, re.error) as exc:
            where = (source.index, "services", index, "placement", "hosts")
            problems.append(source.doc.problem(where, f"bad host pattern: {exc}"))
    return out


def _play_hosts(inventory: Inventory, source: _PlaySource, extra: dict[str, Any], problems: list[Problem]) -> list[str]:
    pattern = source.raw.get("hosts")
    if not isinstance(pattern, (str, list)):
        return []  # the structure check reports it
    try:
        pattern = source.templar.render_value(pattern, extra)
        return select(inventory, pattern)
    except TemplateFailure as exc:
        problems.append(source.doc.problem((source.index, "hosts"), exc.message))
    except (ValueError, TypeError, re.error) as exc:
        problems.append(source.doc.problem((source.index, "hosts"), f"bad host pattern: {exc}"))
    return []


def _host_context(inventory: Inventory, host: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {**inventory.host_vars(host), **extra}


def _context(
    inventory: Inventory,
    host: str,
    source: _PlaySource,
    extra: dict[str, Any],
    groups: dict[str, list[str]],
    hostvars: LazyHostvars,
    play_hosts: list[str],
) -> LazyVars:
    """Ansible's order, lowest first: inventory vars < play vars < vars_files < extra vars; magic on top."""
    play_vars = source.raw.get("vars") if isinstance(source.raw.get("vars"), dict) else {}
    raw = {
        **inventory.host_vars(host),
        **(play_vars or {}),
        **source.vars_files,
        **extra,
        "inventory_hostname": host,
        "inventory_hostname_short": host.split(".")[0],
        "group_names": sorted(g for g in inventory.host_groups(host) if g != "all"),
        "groups": groups,
        "hostvars": hostvars,
        "playbook_dir": source.templar.root,
        "ansible_play_hosts": play_hosts,
        "play_hosts": play_hosts,
    }
    return LazyVars(raw, source.templar)


def _render_play(source: _PlaySource, host: str, context: LazyVars, problems: list[Problem]) -> Play | None:
    rendered: dict[str, Any] = {}
    failed = False
    for key, value in source.raw.items():
        if key in _NOT_RENDERED:
            rendered[key] = value
            continue
        try:
            rendered[key] = _render_tree(source, value, context, (source.index, key))
        except _Located as exc:
            problems.append(source.doc.problem(exc.keypath, f"{exc.message} (rendering for host {host})"))
            failed = True
    if failed:
        return None
    for key in ("tasks", "handlers"):
        if isinstance(rendered.get(key), list):
            rendered[key] = [
                t
                for i, t in enumerate(rendered[key])
                if _when(source, t, context, (source.index, key, i), host, problems)
            ]
    try:
        return Play.model_validate(rendered)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            keypath, _ = _locate(rendered, error["loc"])
            message = _message(error, rendered, keypath)
            if contains_template(_locate(source.raw, error["loc"])[1]):
                message += f" (rendered for host {host})"
            problems.append(source.doc.problem((source.index, *keypath), message))
        return None


def _when(
    source: _PlaySource, task: Any, context: LazyVars, keypath: KeyPath, host: str, problems: list[Problem]
) -> bool:
    """A task's `when` expression, evaluated for this host as Ansible does (a bare expression)."""
    if not isinstance(task, dict) or "when" not in task:
        return True
    condition = task["when"]
    if isinstance(condition, bool):
        return condition
    try:
        return to_bool(source.templar.render_text("{{ (" + str(condition) + ") }}", context))
    except TemplateFailure as exc:
        problems.append(source.doc.problem((*keypath, "when"), f"{exc.message} (rendering for host {host})"))
        return True


class _Located(Exception):
    def __init__(self, keypath: KeyPath, message: str) -> None:
        self.keypath, self.message = keypath, message


def _render_tree(source: _PlaySource, value: Any, context: Mapping[str, Any], keypath: KeyPath) -> Any:
    """Render templated strings, keeping the key path of a failure for its line:col."""
    if isinstance(value, dict):
        # A task's `when` stays an expression for the executor.
        is_task = len(keypath) == 3 and keypath[1] in ("tasks", "handlers")
        return {
            k: (v if is_task and k == "when" else _render_tree(source, v, context, (*keypath, k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render_tree(source, v, context, (*keypath, i)) for i, v in enumerate(value)]
    if is_template(value):
        try:
            return source.templar.render_text(value, context)
        except TemplateFailure as exc:
            raise _Located(keypath, exc.message) from None
    return value


def _render_files(
    source: _PlaySource, play_number: int, play: Play, host: str, context: LazyVars, problems: list[Problem]
) -> dict[tuple[int, int], str]:
    """Render every template task's file for this host (copy tasks with `src` are read as is)."""
    out: dict[tuple[int, int], str] = {}
    for task_index, task in enumerate(play.tasks):
        keypath = (source.index, "tasks", task_index)
        args = task.template or task.copy_
        if args is None or getattr(args, "src", None) is None:
            continue
        assert args.src is not None
        try:
            relative = source.templar.resolve_file(args.src, "templates" if task.template else "files")
            if task.template:
                out[(play_number, task_index)] = source.templar.render_file(relative, context)
            else:
                with open(os.path.join(source.templar.root, relative), encoding="utf-8") as handle:
                    out[(play_number, task_index)] = handle.read()
        except TemplateFailure as exc:
            if exc.source:
                path = _display_path(os.path.join(source.templar.root, exc.source))
                problems.append(Problem(path, exc.line or 0, 1 if exc.line else 0, "", f"{exc.message} (host {host})"))
            else:
                problems.append(source.doc.problem((*keypath, task.module, "src"), exc.message))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(source.doc.problem((*keypath, task.module, "src"), f"cannot read: {exc}"))
    return out


def _display_path(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _locate(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, Any]:
    """Map a pydantic error location onto the data's real key path (dropping union/validator labels)."""
    keypath: list[str | int] = []
    value = data
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
            keypath.append(part)
        elif part == "copy_" and isinstance(value, dict) and "copy" in value:
            value = value["copy"]
            keypath.append("copy")
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
            keypath.append(part)
        elif isinstance(value, dict) and isinstance(part, str) and part.isidentifier() and not part.islower():
            continue  # a union member label such as 'CommandArgs'
        elif isinstance(value, dict) and isinstance(part, str) and "[" not in part and part != "function-after":
            keypath.append(part)  # a missing or unknown key: point at its parent, name the key
            value = None
            break
    return tuple(keypath), value


def _message(error: Any, data: Any, keypath: KeyPath) -> str:
    kind, text = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(keypath[-1]) if keypath else "", _KEYS, n=1)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if text.startswith("Value error, "):
        text = text[len("Value error, ") :]
    if text.startswith("Assertion failed, "):
        text = text[len("Assertion failed, ") :]
    return text[:1].lower() + text[1:]
