"""`rollback` (pure): which kept container each host goes back to, and the plan that starts it again.

The hosts remember: every replaced container is kept, stopped (`update.keep`), with its config files
as they were when it was retired (marks.py). A host goes back to its newest kept container of another
spec than the one running (by spec hash, not version label: a bad deploy that changed only a config
file or env is rolled back too), skipping containers an earlier rollback retired (a second `rollback`
goes further back instead of returning to the bad version). The fleet goes back to one version: the
newest such container's, on every host that keeps one; `--to VERSION` names it. A host without a kept
container of that version runs the playbook's service on that version's image (as it is today).

The rollout is gated like any other. `--hold` writes a hold on each host it moved: `apply` and
`reconcile` leave the service there until the playbook changes (a new version) or `rollback --release`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import replace

from pushorch.actions import Plan, ReplaceContainer
from pushorch.commands import docker as docker_cmd
from pushorch.errors import NothingToRollBack
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner.config import config_files, digests
from pushorch.planner.ingress import ingress_target
from pushorch.planner.plan import Options, plan
from pushorch.planner.rollout import rollout
from pushorch.planner.services import back_to
from pushorch.spec import Service, Spec


def eligible(seen: ObservedHost, service: str, to: str | None) -> list[ObservedContainer]:
    """This host's kept containers a rollback may go back to, newest first."""
    mine = seen.containers_of(service)
    running = {c.spec_hash for c in mine if c.running}
    kept = [c for c in mine if not c.running and c.spec_hash not in running]
    kept = (
        [c for c in kept if c.version == to] if to is not None else [c for c in kept if c.name not in seen.rolled_back]
    )
    return sorted(kept, key=lambda c: c.finished, reverse=True)


def target(service: str, observed: Mapping[str, ObservedHost], spec_image: str, to: str | None) -> tuple[str, str]:
    """(image, version) the fleet goes back to."""
    kept = [c for seen in observed.values() if not seen.error for c in eligible(seen, service, to)]
    if to is not None:
        return (kept[0].image, to) if kept else (_retag(spec_image, to), to)
    if not kept:
        raise NothingToRollBack(
            f"{service}: no kept container of an earlier spec on any host (nothing to roll back to; an earlier"
            " rollback's retired ones are skipped); name a version with --to VERSION"
        )
    newest = max(kept, key=lambda c: c.finished)
    return newest.image, newest.version


def rollback_plan(
    spec: Spec, observed: Mapping[str, ObservedHost], options: Options, service: str, to: str | None, hold: bool
) -> Plan:
    """The plan: the playbook narrowed to `service` on the target image (pulls, hosts without a kept
    container), with each host that keeps a container of the target version sent back to it."""
    declared = [s for h in spec.hosts.values() for p in h.plays for s in p.services if s.name == service]
    image, version = target(service, observed, declared[0].image, to)
    pinned = narrowed(spec, service, image, version)
    base = plan(pinned, observed, options)
    fresh = {a.host: a for r in base.rollouts for b in r.batches for a in b}
    steps: list[ReplaceContainer] = []
    first = None
    for name, host in pinned.hosts.items():
        seen = observed.get(name)
        if seen is None or not seen.reachable or seen.error:
            continue
        for index, play in enumerate(host.plays):
            for pinned_service in (s for s in play.services if s.name == service):
                first = first or (pinned_service, play.policy_for(pinned_service))
                running = [c for c in seen.containers_of(service) if c.running]
                kept = next((c for c in eligible(seen, service, to) if c.version == version), None)
                if kept is not None and running:
                    _, step = back_to(host, seen, host.sources[index], play, pinned_service, kept, running)
                elif name in fresh:
                    step = replace(fresh[name], rollback=True)
                else:
                    continue
                held = _playbook_digest(spec, name, service) if hold else ""
                steps.append(replace(step, hold=held, ingress=ingress_target(pinned, pinned_service, step)))
    if first is None or not steps:
        return base
    rolled = rollout(first[0], first[1], steps, len(base.placed.get(service, ())) or len(steps))
    jobs = next((r.jobs for r in base.rollouts if r.service == service), ())
    return dataclasses.replace(base, rollouts=(replace(rolled, jobs=jobs),))


def _playbook_digest(spec: Spec, host: str, service: str) -> str:
    """The spec hash the playbook gives `service` on `host`: what a hold refuses while it is unchanged."""
    for play in spec.hosts[host].plays:
        for s in play.services:
            if s.name == service:
                return docker_cmd.spec_hash(s, digests(config_files(spec.hosts[host], s)))
    return ""


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
