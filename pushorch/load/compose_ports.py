"""Compose's value forms as pushorch's: `ports` and `volumes` (short and long), sizes, ulimits."""

from __future__ import annotations

import re
from typing import Any

_RANGE = re.compile(r"^[0-9]+(-[0-9]+)?$")
_LONG_PORT = {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
_LONG_VOLUME = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"}


class Unsupported(ValueError):
    """A value compose accepts that pushorch does not map: the message says what to do instead."""


def _span(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def ports(value: Any) -> list[dict[str, Any]]:
    """One compose `ports` item -> pushorch port mappings (a range is one mapping per port)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [{"container": value}]
    if isinstance(value, dict):
        extra = set(value) - _LONG_PORT
        if extra:
            raise Unsupported(f"port key(s) {', '.join(sorted(extra))} not supported")
        short = str(value.get("target", ""))
        if value.get("published") not in (None, ""):
            short = f"{value['published']}:{short}"
        if value.get("host_ip"):
            ip = str(value["host_ip"])
            short = f"{'[' + ip + ']' if ':' in ip else ip}:{short if value.get('published') else ':' + short}"
        return ports(f"{short}/{value.get('protocol', 'tcp')}")
    text, _, proto = str(value).partition("/")
    ip = ""
    if text.startswith("["):
        ip, _, text = text[1:].partition("]")
        text = text.removeprefix(":")
        text = text if text.count(":") else ":" + text
    parts = text.split(":")
    if len(parts) == 3:
        ip, parts = parts[0], parts[1:]
    host, container = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if (
        len(parts) > 2
        or proto not in ("", "tcp", "udp")
        or not _RANGE.match(container)
        or (host and not _RANGE.match(host))
    ):
        raise Unsupported(f"{value!r} is not a port mapping compose reads (like '8080:80', '127.0.0.1:8080:80/udp')")
    containers = _span(container)
    hosts: list[int | None] = list(_span(host)) if host else [None] * len(containers)
    if len(hosts) != len(containers):
        raise Unsupported(f"{value!r}: the host and container ranges differ in length")
    out = []
    for published, inside in zip(hosts, containers, strict=True):
        item: dict[str, Any] = {"container": inside}
        if published is not None:
            item["host"] = published
        if ip:
            item["bind"] = ip
        if proto:
            item["protocol"] = proto
        out.append(item)
    return out


def volume(value: Any, named: dict[str, str]) -> tuple[str, Any]:
    """One compose `volumes` item -> ("volume", pushorch volume) or ("tmpfs", "TARGET[:size=N]").
    `named` maps the compose file's volume names to Docker's (PROJECT_NAME unless it says)."""
    if isinstance(value, dict):
        extra = set(value) - _LONG_VOLUME
        if extra:
            raise Unsupported(f"volume key(s) {', '.join(sorted(extra))} not supported")
        kind, source, target = value.get("type", "volume"), value.get("source"), value.get("target")
        if kind == "tmpfs":
            size = (value.get("tmpfs") or {}).get("size")
            return "tmpfs", f"{target}:size={size}" if size else str(target)
        if kind not in ("bind", "volume"):
            raise Unsupported(f"volume type {kind!r} not supported (bind, volume, tmpfs)")
        if not source:
            raise Unsupported("an anonymous volume (no source) is new at every rollout: name it")
        return "volume", _mount(str(source), str(target), bool(value.get("read_only")), kind, named)
    parts = str(value).split(":")
    if len(parts) == 1:
        raise Unsupported(f"{value!r}: an anonymous volume is new at every rollout: name it ('data:{value}')")
    if len(parts) > 3:
        raise Unsupported(f"{value!r} is not a volume (like '/srv/data:/data:ro' or 'data:/data')")
    modes = set(parts[2].split(",")) if len(parts) == 3 else set()
    if modes - {"ro", "rw", "z", "Z"}:
        raise Unsupported(f"{value!r}: volume mode(s) {', '.join(sorted(modes - {'ro', 'rw'}))} not supported")
    kind = "bind" if parts[0].startswith(("/", ".", "~")) else "volume"
    return "volume", _mount(parts[0], parts[1], "ro" in modes, kind, named)


def _mount(source: str, target: str, read_only: bool, kind: str, named: dict[str, str]) -> dict[str, Any]:
    if kind == "bind" and not source.startswith("/"):
        raise Unsupported(
            f"bind mount {source!r} names a path on this machine, not on the hosts: give an absolute "
            "path on the hosts, or ship the file with a top-level `configs:` entry"
        )
    if kind == "volume":
        if source not in named:
            raise Unsupported(f"volume {source!r} is not declared in the top-level `volumes:`")
        source = named[source]
    return {"source": source, "target": target, "read_only": read_only}


def ulimits(given: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, dict) else {"soft": v, "hard": v} for k, v in given.items()}


def size(value: Any) -> str:
    """Compose's byte sizes ('512m', '1gb', '1.5G', 1024) as Docker's integer-and-unit form."""
    text = str(value).strip().lower().removesuffix("b")
    unit = text[-1] if text[-1:] in ("k", "m", "g") else ""
    number = float(text[: -1 if unit else None] or 0)
    if number != int(number):
        steps = "bkmg"
        number, unit = number * 1024, steps[max(steps.index(unit or "b") - 1, 0)]
    return f"{int(number)}{unit}"
