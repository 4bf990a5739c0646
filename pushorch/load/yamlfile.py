"""YAML files as plain data plus the line:col of every key, with duplicate keys refused.

We compose the node graph ourselves instead of using yaml.safe_load so that every
value keeps its position (for `path:line:col` errors), duplicate keys are all found
at once, and aliases are shared rather than copied (a "billion laughs" document
is refused by size instead of exhausting memory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from pushorch.ansible import vault
from pushorch.errors import Problem
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.secret import Secret, VaultValue, secret_leaves

KeyPath = tuple[str | int, ...]
T = TypeVar("T")

# Bounds that keep hostile input from exhausting the controller.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
MAX_SECRET_FILE_BYTES = 1024 * 1024

_Composer = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Constructor(yaml.SafeLoader):
    """SafeLoader's scalar constructors plus the `!secret` tag (`!secret_env`/`!secret_file` are read by
    the converter, which knows the file's directory and reports problems with their position)."""


def _construct_secret(loader: yaml.SafeLoader, node: yaml.Node) -> Secret:
    return Secret(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Constructor.add_constructor("!secret", _construct_secret)


@dataclass(slots=True)
class Document:
    """One loaded file: its data and where each key path sits in it."""

    path: str
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def position(self, keypath: KeyPath) -> tuple[int, int]:
        """The line:col of the longest prefix of keypath that the file has (1-based)."""
        return longest_prefix(self.marks, keypath) or (1, 1)

    def problem(self, keypath: KeyPath, message: str) -> Problem:
        line, col = self.position(keypath)
        return Problem(self.path, line, col, format_keypath(keypath), message)


def longest_prefix(table: Mapping[KeyPath, T], keypath: KeyPath) -> T | None:
    """What `table` holds for the longest prefix of keypath (the whole of it first), else None."""
    for end in range(len(keypath), -1, -1):
        found = table.get(tuple(keypath[:end]))
        if found is not None:
            return found
    return None


def format_keypath(keypath: KeyPath) -> str:
    """(0, 'services', 1, 'image') -> '[0].services[1].image'; ('all','vars') -> 'all.vars'."""
    out = ""
    for part in keypath:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Converter:
    def __init__(self, path: str, context: LoadContext) -> None:
        self.path, self.context = path, context
        self.problems: list[Problem] = []
        self.marks: dict[KeyPath, tuple[int, int]] = {}
        self.constructor = _Constructor("")
        self.done: dict[int, Any] = {}  # node id -> converted value, so aliases share
        self.sizes: dict[int, int] = {}
        self.expanded = 0

    def problem(self, node: yaml.Node, keypath: KeyPath, message: str) -> None:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Problem(self.path, line, col, format_keypath(keypath), message))

    def convert(self, node: yaml.Node, keypath: KeyPath) -> Any:
        self.marks.setdefault(keypath, (node.start_mark.line + 1, node.start_mark.column + 1))
        if id(node) in self.done:
            # An alias: count what it expands to, so exponential documents are refused.
            self.expanded += self.sizes.get(id(node), 1)
            if self.expanded > MAX_EXPANDED_NODES:
                raise _TooLarge(node)
            return self.done[id(node)]
        before = self.expanded
        self.expanded += 1
        value: Any
        if isinstance(node, yaml.MappingNode):
            value = {}
            self.done[id(node)] = value
            self._mapping(node, keypath, value)
        elif isinstance(node, yaml.SequenceNode):
            value = []
            self.done[id(node)] = value
            for index, item in enumerate(node.value):
                value.append(self.convert(item, (*keypath, index)))
        elif node.tag in ("!secret_env", "!secret_file") and isinstance(node, yaml.ScalarNode):
            value = self._secret_reference(node, keypath)
            self.done[id(node)] = value
        elif node.tag == "!secret_cmd" and isinstance(node, yaml.ScalarNode):
            value = self._secret_command(node, keypath)
            self.done[id(node)] = value
        elif node.tag == "!vault" and isinstance(node, yaml.ScalarNode):
            value = self._vault(node, keypath)
            self.done[id(node)] = value
        else:
            try:
                value = self.constructor.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as exc:
                self.problem(node, keypath, str(exc.problem or exc))
                value = None
            self.done[id(node)] = value
        self.sizes[id(node)] = self.expanded - before
        return value

    def _secret_reference(self, node: yaml.ScalarNode, keypath: KeyPath) -> Secret | None:
        """`!secret_env NAME` (the controller's environment) or `!secret_file PATH` (beside this file)."""
        name = str(node.value).strip()
        if node.tag == "!secret_env":
            found = os.environ.get(name)
            if found is None:
                self.problem(node, keypath, f"!secret_env: environment variable {name!r} is not set")
            return Secret(found) if found is not None else None
        path = os.path.join(os.path.dirname(self.path), os.path.expanduser(name))
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(node, keypath, f"!secret_file: cannot read {name}: {getattr(exc, 'strerror', None) or exc}")
            return None
        if len(text) > MAX_SECRET_FILE_BYTES:
            self.problem(node, keypath, f"!secret_file: {name} is larger than {MAX_SECRET_FILE_BYTES} bytes")
            return None
        return Secret(text.removesuffix("\n"))  # files end with a newline; the secret does not

    def _vault(self, node: yaml.ScalarNode, keypath: KeyPath) -> VaultValue | None:
        """An inline `!vault |` value: decrypted with the run's vault passwords, kept a secret."""
        envelope = str(node.value)
        try:
            return VaultValue(vault.decrypt(envelope, self.context.vault_secrets), envelope)
        except vault.VaultError as exc:
            self.problem(node, keypath, f"!vault: {exc}")
            return None

    def _secret_command(self, node: yaml.ScalarNode, keypath: KeyPath) -> Secret | None:
        """`!secret_cmd "op read op://vault/item/field"`: the stdout of a controller command, run by the
        runner the run's context carries (the loader itself runs nothing)."""
        if self.context.secret_command is None:
            self.problem(node, keypath, "!secret_cmd: no command runner here (only the pushorch CLI runs them)")
            return None
        value, error = self.context.secret_command(str(node.value))
        if error:
            self.problem(node, keypath, f"!secret_cmd: {error}")
        return Secret(value) if value is not None else None

    def _mapping(self, node: yaml.MappingNode, keypath: KeyPath, out: dict[Any, Any]) -> None:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, keypath)
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.problem(key_node, (*keypath, key), f"duplicate key (first defined on line {first})")
            seen[key] = key_node
        try:
            self.constructor.flatten_mapping(node)  # resolve `<<` merge keys; own keys come last
        except yaml.constructor.ConstructorError as exc:
            self.problem(node, keypath, str(exc.problem))
            return
        for key_node, value_node in node.value:
            key = self._key(key_node, keypath)
            self.marks[(*keypath, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.convert(value_node, (*keypath, key))

    def _key(self, key_node: yaml.Node, keypath: KeyPath) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            self.problem(key_node, keypath, "mapping keys must be plain scalars")
            return f"<{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}>"
        try:
            key = self.constructor.construct_object(key_node)
        except yaml.constructor.ConstructorError as exc:
            self.problem(key_node, keypath, str(exc.problem or exc))
            return f"<{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}>"
        if isinstance(key, Secret):
            self.problem(key_node, keypath, "a key cannot be a !secret")
            return str(key_node.value)
        return key


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def parse_yaml(text: str, path: str, context: LoadContext = NO_CONTEXT) -> tuple[Document, list[Problem]]:
    """Parse YAML text; returns the document and every problem found (empty when valid)."""
    nodes, problems = _nodes(text, path)
    if problems:
        return Document(path, None), problems
    if len(nodes) > 1:
        second = nodes[1].start_mark
        return Document(path, None), [
            Problem(path, second.line + 1, second.column + 1, "", "expected one YAML document, found several")
        ]
    if not nodes:
        return Document(path, None), []
    return _document(nodes[0], path, context)


def parse_yaml_all(text: str, path: str, context: LoadContext = NO_CONTEXT) -> tuple[list[Document], list[Problem]]:
    """Every document of a `---`-separated stream (Kubernetes manifests), each with its own marks;
    empty documents are left out."""
    nodes, problems = _nodes(text, path)
    docs = []
    for node in nodes:
        doc, found = _document(node, path, context)
        problems.extend(found)
        if doc.data is not None:
            docs.append(doc)
    return docs, problems


def _nodes(text: str, path: str) -> tuple[list[yaml.Node], list[Problem]]:
    if len(text) > MAX_FILE_BYTES:
        return [], [Problem(path, 1, 1, "", f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        return list(yaml.compose_all(text, Loader=_Composer)), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "nesting depth" in str(exc.problem):  # PyYAML >= 6.0.4 bounds nesting itself
            return [], [Problem(path, line, col, "", "YAML nesting is too deep")]
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return [], [Problem(path, line, col, "", f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:
        return [], [Problem(path, 1, 1, "", f"YAML error: {exc}")]
    except RecursionError:
        return [], [Problem(path, 1, 1, "", "YAML nesting is too deep")]


def _document(node: yaml.Node, path: str, context: LoadContext) -> tuple[Document, list[Problem]]:
    converter = _Converter(path, context)
    try:
        data = converter.convert(node, ())
    except _TooLarge as exc:
        mark = exc.node.start_mark
        message = f"document expands to more than {MAX_EXPANDED_NODES} nodes through aliases"
        return Document(path, None), [Problem(path, mark.line + 1, mark.column + 1, "", message)]
    except RecursionError:
        return Document(path, None), [Problem(path, 1, 1, "", "YAML nesting is too deep")]
    return Document(path, data, converter.marks), converter.problems


def read_text(path: str, context: LoadContext = NO_CONTEXT) -> tuple[str | None, list[Problem]]:
    """A file's text (a whole-file vault opened with the context's passwords), or the problem that
    kept us from reading it."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [Problem(path, 0, 0, "", f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 0, 0, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    if vault.is_vault(text):  # a whole file encrypted with ansible-vault
        try:
            return vault.decrypt(text, context.vault_secrets), []
        except vault.VaultError as exc:
            return None, [Problem(path, 1, 1, "", f"Ansible Vault: {exc}")]
    return text, []


def load_yaml(path: str, context: LoadContext = NO_CONTEXT) -> tuple[Document, list[Problem]]:
    """Read and parse one YAML file."""
    text, problems = read_text(path, context)
    if text is None:
        return Document(path, None), problems
    doc, problems = parse_yaml(text, path, context)
    if doc.data is not None and _vaulted(path):
        doc.data = secret_leaves(doc.data)  # what a vault holds is secret: redacted wherever it goes
    return doc, problems


def load_yaml_all(path: str, context: LoadContext = NO_CONTEXT) -> tuple[list[Document], list[Problem]]:
    """Read and parse every document of one YAML file."""
    text, problems = read_text(path, context)
    if text is None:
        return [], problems
    docs, problems = parse_yaml_all(text, path, context)
    if _vaulted(path):
        for doc in docs:
            doc.data = secret_leaves(doc.data)
    return docs, problems


def _vaulted(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return vault.is_vault(handle.read(len(vault.HEADER)))
    except OSError:
        return False
