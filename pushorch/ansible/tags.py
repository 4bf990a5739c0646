"""Ansible's --tags / --skip-tags over a rendered host spec (pure).

A task's tags are its own plus its play's. `--tags` keeps the tasks with one of the given tags
(`all`: every task not tagged `never`; `tagged`, `untagged` as in Ansible) and those tagged
`always`; `--skip-tags` then drops the ones with a skipped tag (`always` too, when named). A task
tagged `never` runs only when one of its tags is asked for. Services are not tasks: they run when
their play is selected by its own tags (a play with no tags: only with no --tags, or `all`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models only type it: `exec` and `inventory` load no pydantic model (~110 ms)
    from pushorch.spec import HostSpec, Play, Task


@dataclass(frozen=True, slots=True)
class Selection:
    tags: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.tags or self.skip)

    def wants(self, tags: set[str]) -> bool:
        """Whether an item with these tags runs: ansible-core's rule, case by case."""
        tags = set(tags) or {"untagged"}
        only, skip = set(self.tags) or {"all"}, set(self.skip)
        if "always" in tags or ("all" in only and "never" not in tags) or tags & only:
            run = True
        else:
            run = "tagged" in only and tags != {"untagged"} and "never" not in tags
        if run and skip:
            if "all" in skip:
                run = "always" in tags and "always" not in skip
            elif tags & skip or ("tagged" in skip and tags != {"untagged"}):
                run = False
        return run


def split(values: tuple[str, ...]) -> tuple[str, ...]:
    """`--tags a,b --tags c` -> (a, b, c), as Ansible reads them."""
    return tuple(t.strip() for value in values for t in value.split(",") if t.strip())


def select(host: HostSpec, selection: Selection) -> HostSpec:
    """The host spec with only the selected tasks (rendered files re-keyed) and services."""
    # Without --tags every task runs but those tagged `never` (as in Ansible).
    if not selection.active and not any("never" in t.tags for p in host.plays for t in p.tasks):
        return host
    plays: list[Play] = []
    files: dict[tuple[int, int], str] = {}
    for p, play in enumerate(host.plays):
        kept: list[Task] = []
        for t, task in enumerate(play.tasks):
            if selection.wants(set(task.tags) | set(play.tags)):
                if (p, t) in host.files:
                    files[(p, len(kept))] = host.files[(p, t)]
                kept.append(task)
        services = play.services if selection.wants(set(play.tags)) else []
        plays.append(play.model_copy(update={"tasks": kept, "services": services}))
    return replace(host, plays=tuple(plays), files=files)
