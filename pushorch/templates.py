"""Jinja2 rendering: sandboxed, StrictUndefined, lazily templated variables, errors with line numbers.

Two environments share one sandbox and one loader rooted at the playbook directory:
`render_value` keeps native types for a value that is one expression
(`port: "{{ app_port }}"` stays an int), `render_file` renders template files to text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pushorch.secret import Secret


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def contains_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    return is_template(value)


class TemplateFailure(Exception):
    """A template that did not render; line is the template's own line when known."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.source = message, line, source


def _concat(chunks: Iterator[Any]) -> Any:
    # One chunk keeps its type; several join as text. Unlike jinja2's native_concat we never
    # literal_eval strings, so version "1.10" stays a string and is not turned into 1.1.
    parts = list(chunks)
    if len(parts) == 1:
        if isinstance(parts[0], jinja2.Undefined):
            str(parts[0])  # StrictUndefined raises here, naming the variable
        return parts[0]
    text = "".join(p.reveal() if isinstance(p, Secret) else str(p) for p in parts)
    # A value built from a secret is a secret: "token={{ token }}" stays redacted everywhere.
    return Secret(text) if any(isinstance(p, Secret) for p in parts) else text


class _NativeSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = NativeCodeGenerator
    concat = staticmethod(_concat)  # type: ignore[assignment]


def _secret_aware(value: Any) -> Any:
    # A Secret used in a template renders as its value; redaction happens at output time.
    return value.reveal() if isinstance(value, Secret) else value


def to_bool(value: Any) -> bool:
    """Ansible's `bool` filter: 'yes', 'on', 'true', '1' are true; 'no', 'off', 'false', '0', '' false."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "true", "1", "y", "t")
    return bool(value)


# Filters Ansible users reach for that Jinja2 lacks.
FILTERS = {
    "bool": to_bool,
    "to_json": lambda v: json.dumps(v, sort_keys=True),
    "to_nice_json": lambda v: json.dumps(v, indent=2, sort_keys=True),
}


class Templar:
    """Renders strings and files for one playbook directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        options: dict[str, Any] = {
            "undefined": jinja2.StrictUndefined,
            "keep_trailing_newline": True,
            "loader": jinja2.FileSystemLoader(self.root),
            "finalize": _secret_aware,
        }
        self.text_env = ImmutableSandboxedEnvironment(**options)
        # Playbook values keep Secret objects (so secrecy survives templating); files get the plain text.
        self.native_env = _NativeSandbox(**{**options, "finalize": None})
        for env in (self.text_env, self.native_env):
            env.filters.update(FILTERS)
        self._compiled: dict[str, jinja2.Template] = {}

    def render_text(self, source: str, variables: Mapping[str, Any]) -> Any:
        """Render one templated string from a playbook (native type when it is one expression)."""
        template = self._compiled.get(source)
        try:
            if template is None:
                template = self._compiled[source] = self.native_env.from_string(source)
            return self._run(template, variables)
        except TemplateFailure:
            raise
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailure(f"template syntax error: {exc.message}", exc.lineno) from None
        except (jinja2.TemplateError, SecurityError, ArithmeticError, TypeError, ValueError, AttributeError) as exc:
            raise TemplateFailure(_describe(exc), None) from None

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """A copy of a YAML value with every templated string rendered."""
        if isinstance(value, dict):
            return {k: self.render_value(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v, variables) for v in value]
        if is_template(value):
            return self.render_text(value, variables)
        return value

    def resolve_file(self, relative: str, subdir: str = "templates") -> str:
        """A template path inside the playbook directory (templates/ first); refuses escapes."""
        for candidate in (os.path.join(subdir, relative), relative):
            full = os.path.realpath(os.path.join(self.root, candidate))
            if not full.startswith(self.root + os.sep):
                raise TemplateFailure(f"{relative!r} is outside the playbook directory")
            if os.path.isfile(full):
                return os.path.relpath(full, self.root)
        raise TemplateFailure(f"template {relative!r} not found in {subdir}/ or beside the playbook")

    def render_file(self, relative: str, variables: Mapping[str, Any]) -> str:
        """Render a template file (path from resolve_file) to text."""
        try:
            template = self.text_env.get_template(relative)
            return str(self._run(template, variables))
        except TemplateFailure as exc:
            exc.source = exc.source or relative
            raise
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailure(f"template syntax error: {exc.message}", exc.lineno, relative) from None
        except (jinja2.TemplateError, SecurityError, ArithmeticError, TypeError, ValueError, AttributeError) as exc:
            raise TemplateFailure(_describe(exc), _template_line(exc, relative), relative) from None

    @staticmethod
    def _run(template: jinja2.Template, variables: Mapping[str, Any]) -> Any:
        # shared=True makes the context read our Mapping directly, so variables that are
        # themselves templates are rendered only when a template reads them (LazyVars).
        context = template.new_context(variables, shared=True)  # type: ignore[arg-type]
        try:
            return template.environment.concat(template.root_render_func(context))
        except TemplateFailure:
            raise
        except Exception:
            template.environment.handle_exception()  # re-raises with template file:line frames


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text if isinstance(exc, jinja2.UndefinedError) else f"{type(exc).__name__}: {text}"


def _template_line(exc: BaseException, relative: str) -> int | None:
    """Jinja rewrites tracebacks so frames of a template carry its file name and line."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(relative):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class LazyVars(Mapping[str, Any]):
    """Variables whose templated values render on first read, as Ansible's lazy templating does."""

    def __init__(self, raw: Mapping[str, Any], templar: Templar) -> None:
        self._raw, self._templar = raw, templar
        self._done: dict[str, Any] = {}
        self._busy: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        if key not in self._raw:
            return self._templar.text_env.globals[key]  # range, dict, namespace, ...
        value = self._raw[key]
        if contains_template(value):
            if key in self._busy:
                chain = " -> ".join([*self._busy[self._busy.index(key) :], key])
                raise TemplateFailure(f"variable refers to itself: {chain}")
            self._busy.append(key)
            try:
                value = self._templar.render_value(value, self)
            except TemplateFailure as exc:
                if not exc.message.startswith("in variable "):
                    exc.message = f"in variable {key!r}: {exc.message}"
                raise
            finally:
                self._busy.pop()
        self._done[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw or key in self._templar.text_env.globals

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def copy(self) -> dict[str, Any]:
        # Jinja's traceback rewriting copies the context's variables; give it the raw ones.
        return dict(self._raw)


class LazyHostvars(Mapping[str, Any]):
    """The `hostvars` variable: each host's variables, built only when a template reads them."""

    def __init__(self, hosts: list[str], build: Any) -> None:
        self._hosts, self._build = hosts, build
        self._cache: dict[str, Mapping[str, Any]] = {}

    def __getitem__(self, host: str) -> Mapping[str, Any]:
        if host not in self._hosts:
            raise KeyError(host)
        if host not in self._cache:
            self._cache[host] = self._build(host)
        return self._cache[host]

    def __iter__(self) -> Iterator[str]:
        return iter(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts)
