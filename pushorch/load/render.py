"""Rendering plays per host: each play's values with the host's variables (lazy, Ansible's order), its
template files, and the rendered play validated into `spec.Play`, with every problem located."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from pushorch.ansible.inventory import Inventory
from pushorch.ansible.patterns import select
from pushorch.errors import Problem
from pushorch.load import build_context
from pushorch.load.owner import owner
from pushorch.load.yamlfile import Document, KeyPath
from pushorch.spec import HostSpec, Play, schema_keys
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
class PlaySource:
    doc: Document
    index: int
    raw: dict[str, Any]
    templar: Templar
    vars_files: dict[str, Any]

    @property
    def has_replicas(self) -> bool:
        services = self.raw.get("services")
        return isinstance(services, list) and any(isinstance(s, dict) and "replicas" in s for s in services)


def _built(play: Play, source: PlaySource, problems: list[Problem]) -> Play:
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
            digest = build_context.digest(context, service.build.dockerfile, service.build.args, service.build.target)
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


def render_hosts(
    inventory: Inventory,
    plays: list[PlaySource],
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
            sources.append(owner(source.doc.path))
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
    inventory: Inventory, source: PlaySource, play: Play, host: str, problems: list[Problem]
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


def _play_hosts(inventory: Inventory, source: PlaySource, extra: dict[str, Any], problems: list[Problem]) -> list[str]:
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
    source: PlaySource,
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


def _render_play(source: PlaySource, host: str, context: LazyVars, problems: list[Problem]) -> Play | None:
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
            keypath, _ = locate(rendered, error["loc"])
            message = problem_message(error, rendered, keypath)
            if contains_template(locate(source.raw, error["loc"])[1]):
                message += f" (rendered for host {host})"
            problems.append(source.doc.problem((source.index, *keypath), message))
        return None


def _when(
    source: PlaySource, task: Any, context: LazyVars, keypath: KeyPath, host: str, problems: list[Problem]
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


def _render_tree(source: PlaySource, value: Any, context: Mapping[str, Any], keypath: KeyPath) -> Any:
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
    source: PlaySource, play_number: int, play: Play, host: str, context: LazyVars, problems: list[Problem]
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


def locate(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, Any]:
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


def problem_message(error: Any, data: Any, keypath: KeyPath) -> str:
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
