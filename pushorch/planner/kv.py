"""Configuration in Consul's KV store (pure): what to set and delete so the store holds each service's
`consul.kv`, written once for the cluster through one host's agent (the run's KV writer).

Each service's keys are listed in a manifest, `pushorch/kv/SERVICE` ({"keys", "playbook"}), so
keys dropped from the playbook (or a service dropped entirely) can be found and removed with
--prune, and only when the playbook that wrote them is among the run's. Keys pushorch writes carry
its flag; a key whose flags say someone else wrote it last is never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pushorch.actions import Action, DeleteKv, WriteKv
from pushorch.observed import ObservedHost, ObservedKey
from pushorch.planner.labels import owned_by
from pushorch.secret import Secret
from pushorch.spec import Spec

MANIFEST_PREFIX = "pushorch/kv/"
FLAG = 0x70757368  # "push": the KV entry's flags say pushorch wrote it
PRUNED = "no longer declared (--prune)"


def manifest_key(service: str) -> str:
    return MANIFEST_PREFIX + service


def declared(spec: Spec) -> dict[str, tuple[dict[str, str | Secret], str]]:
    """service -> (its keys and values, its playbook), rendered for the first host (by name) that
    declares the service: the store is the cluster's, so one rendering is written."""
    found: dict[str, tuple[dict[str, str | Secret], str]] = {}
    for name in sorted(spec.hosts):
        host = spec.hosts[name]
        for _, service, source in host.declared():
            if service.name not in found and service.consul is not None and service.consul.kv:
                found[service.name] = (dict(service.consul.kv), source)
    return found


def keys_to_read(spec: Spec, manifests: Mapping[str, ObservedKey]) -> list[str]:
    """Every key the plan compares: the declared ones and the ones the manifests list."""
    keys = {k for values, _ in declared(spec).values() for k in values}
    for entry in manifests.values():
        keys.update(_keys(_manifest(entry)))
    return sorted(keys)


def writer(observed: Mapping[str, ObservedHost]) -> str | None:
    """The host whose agent the run reads and writes the KV store through (first by name with one)."""
    return next((h for h, o in sorted(observed.items()) if o.consul_agent and not o.error and o.reachable), None)


def kv_actions(
    spec: Spec, observed: Mapping[str, ObservedHost], prune: bool, playbooks: tuple[str, ...]
) -> list[Action]:
    """Sets for keys that differ, manifest updates, and (with prune) deletes; all on the KV writer."""
    host = next((h for h, o in sorted(observed.items()) if o.kv is not None), None)
    if host is None:
        return []
    seen = observed[host]
    current = seen.kv or {}
    wanted = declared(spec)
    out: list[Action] = []
    for service, (values, source) in wanted.items():
        for key, value in sorted(values.items()):
            entry = current.get(key)
            plain = value.reveal() if isinstance(value, Secret) else value
            if entry is None or entry.value != plain.encode() or entry.flags != FLAG:
                why = "new" if entry is None else "changed" if entry.value != plain.encode() else "flags"
                out.append(WriteKv(host, why, service=service, key=key, value=value, cas=_index(entry), flags=FLAG))
        old = _manifest(seen.kv_manifests.get(service))
        leftover = [k for k in _keys(old) if k not in values]
        pruned = prune and owned_by(str(old.get("playbook", source)), playbooks)
        out.extend(_deletes(host, service, leftover, current) if pruned else [])
        keep = sorted(set(values) | (set() if pruned else set(leftover)))
        _manifest_write(out, host, service, {"keys": keep, "playbook": source}, seen.kv_manifests.get(service))
    for service, entry in sorted(seen.kv_manifests.items()):
        old = _manifest(entry)
        if service in wanted or not prune or not owned_by(str(old.get("playbook") or ""), playbooks):
            continue  # never touch what the given playbooks do not declare, without --prune
        out.extend(_deletes(host, service, _keys(old), current))
        gone = DeleteKv(host, PRUNED, service=service, key=manifest_key(service), cas=entry.modify_index)
        out.append(gone)
    return out


def _deletes(host: str, service: str, keys: list[str], current: Mapping[str, ObservedKey | None]) -> list[Action]:
    out: list[Action] = []
    for key in sorted(keys):
        entry = current.get(key)
        if entry is not None and entry.flags == FLAG:  # someone else's value since: left alone
            out.append(DeleteKv(host, PRUNED, service=service, key=key, cas=entry.modify_index))
    return out


def _manifest_write(
    out: list[Action], host: str, service: str, manifest: dict[str, object], entry: ObservedKey | None
) -> None:
    old = _manifest(entry)
    if (
        entry is not None
        and old.get("keys") == manifest["keys"]
        and owned_by(str(old.get("playbook")), [str(manifest["playbook"])])
    ):
        return  # the same keys, this playbook's (a basename written before owners were paths too)
    text = json.dumps(manifest, sort_keys=True)
    if entry is None or entry.value != text.encode():
        key = manifest_key(service)
        out.append(WriteKv(host, "key list", service=service, key=key, value=text, cas=_index(entry), flags=FLAG))


def _index(entry: ObservedKey | None) -> int:
    return entry.modify_index if entry is not None else 0


def _keys(manifest: dict[str, object]) -> list[str]:
    keys = manifest.get("keys")
    return [str(k) for k in keys] if isinstance(keys, list) else []


def _manifest(entry: ObservedKey | None) -> dict[str, object]:
    if entry is None:
        return {}
    try:
        data = json.loads(entry.value or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
