"""Compose files as docker compose reads them: `.env` and `${VAR:-default}` interpolation, several
files merged in order (`-f a -f b`), `profiles`. The result is one compose mapping and, for every key
path in it, the file and line:col it came from."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pushorch.errors import Problem
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.yamlfile import Document, KeyPath, format_keypath, load_yaml, longest_prefix, read_text

NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Compose's list forms of these mappings ("KEY=VALUE" items) are read as mappings before merging.
_LIST_MAPPINGS = {"environment": "=", "labels": "=", "extra_hosts": ":", "sysctls": "=", "annotations": "="}
# Sequences compose merges by concatenation (unique); by a key; every other one the later file replaces.
_APPENDED = {"ports", "expose", "external_links", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "security_opt"}
_KEYED = {"volumes": "target", "devices": "target", "secrets": "target", "configs": "target"}


def is_compose(data: Any) -> bool:
    """A compose file is a mapping with `services` (a playbook is a list of plays)."""
    return isinstance(data, dict) and isinstance(data.get("services"), dict)


@dataclass(slots=True)
class Project:
    """The merged compose model and where each key path was written (file, line, col)."""

    files: list[str]
    data: dict[str, Any]
    env: dict[str, str]
    origin: dict[KeyPath, tuple[str, int, int]] = field(default_factory=dict)

    @property
    def directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.files[0]))

    @property
    def name(self) -> str:
        """`name:`, else COMPOSE_PROJECT_NAME, else the directory's name as compose normalizes it."""
        given = self.data.get("name") or self.env.get("COMPOSE_PROJECT_NAME")
        raw = str(given) if given else os.path.basename(self.directory)
        return re.sub(r"[^a-z0-9_-]", "", raw.lower()) or "default"

    def problem(self, keypath: KeyPath, message: str) -> Problem:
        path, line, col = longest_prefix(self.origin, keypath) or (self.files[0], 1, 1)
        return Problem(path, line, col, format_keypath(keypath), message)


def read_env_file(text: str) -> dict[str, str]:
    """`.env` / `env_file` lines: KEY=VALUE, `export` allowed, # comments, quotes as compose reads them."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line[7:].lstrip() if line.startswith("export ") else line
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].replace("\\n", "\n") if value[0] == '"' else value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[key] = value
    return out


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `${VAR:+r}`,
    `${VAR+r}` (defaults may nest), `$$` for a dollar; an unset variable is empty, as compose has it."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            out.append(_braced(text[i + 2 : end], env))
            i = end + 1
        elif (found := _VAR.match(text, i + 1)) is not None:
            out.append(env.get(found.group(), ""))
            i = found.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text.startswith("${", j):
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _braced(inner: str, env: Mapping[str, str]) -> str:
    found = _VAR.match(inner)
    if found is None:
        raise InterpolationError(f"invalid interpolation format for {'${' + inner + '}'!r}")
    name, rest = found.group(), inner[found.end() :]
    value, is_set = env.get(name), name in env
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            present = bool(value) if op.startswith(":") else is_set
            if op.endswith("-"):
                return value or "" if present else interpolate(arg, env)
            if op.endswith("+"):
                return interpolate(arg, env) if present else ""
            if not present:
                raise InterpolationError(f"required variable {name} is missing a value: {interpolate(arg, env)}")
            return value or ""
    raise InterpolationError(f"invalid interpolation format for {'${' + inner + '}'!r}")


def load_project(paths: list[str], context: LoadContext = NO_CONTEXT) -> tuple[Project | None, list[Problem]]:
    """Read the compose files, then as `project_of` (for `pushorch convert`, which has only paths)."""
    problems: list[Problem] = []
    docs = []
    for path in paths:
        doc, found = load_yaml(path, context)
        problems.extend(found)
        docs.extend([] if found else [doc])
    if not docs:
        return None, problems
    project, found = project_of(docs, context)
    return project, problems + found


def project_of(docs: list[Document], context: LoadContext = NO_CONTEXT) -> tuple[Project | None, list[Problem]]:
    """Interpolate and merge the compose files already read, in order; drop the services no enabled
    profile selects. Every problem at once (a value that cannot be interpolated stays as written, so
    the mapping finds the others); no Project when none of them is a compose file."""
    problems: list[Problem] = []
    env = _environment(docs[0].path, context, problems)
    project = Project(files=[doc.path for doc in docs], data={}, env=env)
    for doc in docs:
        path = doc.path
        if not is_compose(doc.data):
            problems.append(doc.problem((), "a compose file is a mapping with `services`"))
            continue
        data = _interpolated(doc, doc.data, (), env, problems)
        _normalize(data)
        # A later file's key is where the merged value came from; keys only earlier files have keep theirs.
        project.origin.update({keypath: (path, line, col) for keypath, (line, col) in doc.marks.items()})
        project.data = _merge(project.data, data) if project.data else data
    if not project.data:
        return None, problems
    enabled = set(filter(None, env.get("COMPOSE_PROFILES", "").split(","))) | set(context.compose.profiles)
    services = project.data["services"]
    for name in [n for n, s in services.items() if isinstance(s, dict) and s.get("profiles")]:
        if not enabled & {str(p) for p in services[name]["profiles"]}:
            del services[name]
    return project, problems


def _environment(first: str, context: LoadContext, problems: list[Problem]) -> dict[str, str]:
    """The shell's environment over the project's `.env` (compose's precedence)."""
    env: dict[str, str] = {}
    dotenv = os.path.join(os.path.dirname(os.path.abspath(first)), ".env")
    if os.path.isfile(dotenv):
        text, found = read_text(dotenv, context)
        problems.extend(found)
        env.update(read_env_file(text or ""))
    env.update(context.compose.environ)
    return env


def _interpolated(doc: Document, value: Any, keypath: KeyPath, env: Mapping[str, str], problems: list[Problem]) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except InterpolationError as exc:
            problems.append(doc.problem(keypath, str(exc)))
            return value
    if isinstance(value, dict):
        return {k: _interpolated(doc, v, (*keypath, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(doc, v, (*keypath, i), env, problems) for i, v in enumerate(value)]
    return value


def _normalize(data: dict[str, Any]) -> None:
    """List forms of the mappings compose merges by key, read as mappings (`- KEY=VALUE`)."""
    for service in data["services"].values():
        if not isinstance(service, dict):
            continue
        for key, sep in _LIST_MAPPINGS.items():
            items = service.get(key)
            if isinstance(items, list) and all(isinstance(i, str) for i in items):
                pairs = [i.split(sep, 1) if sep in i else [i, None] for i in items]
                service[key] = {k.strip(): v for k, v in pairs}


def _merge(base: Any, over: Any, key: str = "") -> Any:
    """Compose's merge: mappings by key, some sequences appended or keyed, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v, str(k)) if k in base else v
        return out
    if isinstance(base, list) and isinstance(over, list) and key in _APPENDED:
        return base + [v for v in over if v not in base]
    if isinstance(base, list) and isinstance(over, list) and key in _KEYED:
        return _merge_keyed(base, over, _KEYED[key])
    return over


def _merge_keyed(base: list[Any], over: list[Any], field_name: str) -> list[Any]:
    def target(item: Any) -> Any:
        if isinstance(item, dict):
            return item.get(field_name) or item.get("source")
        parts = str(item).split(":")
        return parts[1] if len(parts) > 1 else parts[0]

    merged = {target(item): item for item in base}
    merged.update({target(item): item for item in over})
    return list(merged.values())


def literal(value: Any) -> Any:
    """Compose and Kubernetes values are not Jinja templates: text that looks like one is kept as it is."""
    if isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value):
        return "{% raw %}" + value + "{% endraw %}"
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value
