"""Plays, and the loaded whole (`HostSpec`, `Spec`) that load hands to observe and plan; the schema's keys."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from pushorch.spec.ingress import IngressProxy
from pushorch.spec.service import (
    Network,
    Service,
    UpdatePolicy,
)
from pushorch.spec.tasks import (
    Task,
)
from pushorch.spec.values import (
    CountOrPercent,
    Model,
)

# -- plays -----------------------------------------------------------------------------------------


class Play(Model):
    """One play: which hosts, their variables, preparation tasks, handlers and services."""

    name: str | None = None
    hosts: str | list[str]
    vars: dict[str, Any] = Field(default_factory=dict)
    vars_files: list[str] = Field(default_factory=list)
    become: bool = False
    gather_facts: bool = True
    tasks: list[Task] = Field(default_factory=list)
    handlers: list[Task] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    serial: CountOrPercent | None = None
    max_fail_percentage: float | None = Field(None, ge=0, le=100)
    any_errors_fatal: bool = False
    update: UpdatePolicy | None = None
    tags: list[str] = Field(default_factory=list)  # inherited by its tasks; select its services
    networks: list[Network] = Field(default_factory=list)
    ingress: IngressProxy | None = None  # this play's hosts run the proxy (spec/ingress.py)

    @model_validator(mode="before")
    @classmethod
    def _tag_string(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("tags"), str):
            value = {**value, "tags": [t.strip() for t in value["tags"].split(",") if t.strip()]}
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> Play:
        handler_names = [h.name for h in self.handlers]
        if None in handler_names:
            raise ValueError("every handler needs a name (tasks notify it by name)")
        writers = {t.name for t in self.tasks if t.template is not None or t.copy_ is not None}
        for service in self.services:
            for wanted in service.restart_on:
                if wanted not in writers:
                    raise ValueError(
                        f"service {service.name} restart_on {wanted!r}: no template or copy task is named so"
                    )
        for task in self.tasks:
            for wanted in task.notify:
                if wanted not in handler_names:
                    raise ValueError(f"task {task.name or task.module!r} notifies {wanted!r}, which is no handler")
        names = [s.name for s in self.services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"service names must be unique: {', '.join(duplicates)}")
        return self

    def policy_for(self, service: Service) -> UpdatePolicy:
        """A service's update policy: its own, else the play's, else the defaults."""
        return service.update or self.update or UpdatePolicy()


# -- the loaded whole: what `load` hands to observe/plan ------------------------------------------


@dataclass(frozen=True, slots=True)
class HostSpec:
    """Everything one host must become: its variables and each play rendered for it."""

    name: str
    vars: Mapping[str, Any]
    plays: tuple[Play, ...]
    # Rendered content of template/copy tasks: (play index, task index) -> text.
    files: Mapping[tuple[int, int], str]
    # The owner identity of the playbook each play came from (load/owner.py), parallel to `plays`.
    sources: tuple[str, ...] = ()
    # Services whose `placement.hosts` pattern leaves this host out.
    excluded: frozenset[str] = frozenset()

    def declared(self) -> Iterator[tuple[Play, Service, str]]:
        """Each service the host's plays declare, with its play and its playbook's owner identity."""
        for play, source in zip(self.plays, self.sources or ("",) * len(self.plays), strict=True):
            for service in play.services:
                yield play, service, source


@dataclass(frozen=True, slots=True)
class Spec:
    """The desired state of every targeted host, in inventory order."""

    playbooks: tuple[str, ...]
    hosts: Mapping[str, HostSpec]
    # Hosts the plays target that --limit left out: nothing is done to them, but placement counts
    # the instances they run (a limit restricts what changes, never what placement knows).
    outside: Mapping[str, HostSpec] = field(default_factory=dict)


def schema_keys(model: type[BaseModel] = Play, seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every key the playbook schema accepts, at any depth (for 'did you mean' and the docs test)."""
    seen = seen if seen is not None else set()
    seen.add(model)
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(info.alias or name)
        for sub in _models_in(info.annotation):
            if sub not in seen:
                keys |= schema_keys(sub, seen)
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]
