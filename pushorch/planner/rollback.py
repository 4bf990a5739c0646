"""`rollback` (pure): which version a service goes back to, and the spec that says so.

The hosts remember: every replaced container is kept, stopped (`update.keep`). The previous version
is the most recently stopped kept container that is not the running version; `--to VERSION` names
one (a kept container of that version, else the playbook's image with that tag). The rollback spec
is the playbook's, narrowed to that one service with only its image changed, so the rollout that
follows is gated like any other, and `plan` afterwards shows the drift from the playbook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pushorch.errors import NothingToRollBack
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.spec import Service, Spec


def target(service: str, observed: Mapping[str, ObservedHost], spec_image: str, to: str | None) -> tuple[str, str]:
    """(image, version) to go back to."""
    mine = [c for host in observed.values() if not host.error for c in host.containers_of(service)]
    if to is not None:
        named = [c for c in mine if c.version == to]
        return (named[0].image, to) if named else (_retag(spec_image, to), to)
    running = {c.version for c in mine if c.running}
    kept = [c for c in mine if not c.running and c.version not in running]
    if not kept:
        raise NothingToRollBack(
            f"{service}: no kept container of an earlier version on any host (nothing to roll back to);"
            " name one with --to VERSION"
        )
    newest: ObservedContainer = max(kept, key=lambda c: c.finished)
    return newest.image, newest.version


def narrowed(spec: Spec, service: str, image: str, version: str) -> Spec:
    """The spec with only `service`, on `image`: no tasks, no other services (they are not rolled back)."""
    hosts = {}
    for name, host in spec.hosts.items():
        plays = tuple(
            play.model_copy(
                update={
                    "tasks": [],
                    "handlers": [],
                    "services": [_pinned(s, image, version) for s in play.services if s.name == service],
                }
            )
            for play in host.plays
        )
        hosts[name] = replace(host, plays=plays, files={})
    return replace(spec, hosts=hosts)


def _pinned(service: Service, image: str, version: str) -> Service:
    return service.model_copy(update={"image": image, "version": version})


def _retag(image: str, tag: str) -> str:
    repository, _, last = image.rpartition("/")
    name = last.split("@", 1)[0].split(":", 1)[0]
    return f"{repository}/{name}:{tag}" if repository else f"{name}:{tag}"
