"""Pure parsers: the probe's output -> ObservedHost."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pushorch.observed import ObservedContainer, ObservedFile, ObservedHost, SavedFile


def sections(output: str) -> dict[str, list[str]]:
    """Split probe output on its `==pushorch:NAME==` markers."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("==pushorch:") and line.endswith("=="):
            current = found.setdefault(line[len("==pushorch:") : -2], [])
        elif current is not None:
            current.append(line)
    return found


def _keyvalues(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip().strip('"')
    return out


def published_ports(ports: dict[str, Any] | None) -> dict[str, str]:
    """Docker's NetworkSettings.Ports -> {"8080/tcp": "0.0.0.0:49153"} (the first binding of each)."""
    out = {}
    for port, bindings in (ports or {}).items():
        if bindings:
            out[port] = f"{bindings[0].get('HostIp', '')}:{bindings[0].get('HostPort', '')}"
    return out


def container(data: dict[str, Any]) -> ObservedContainer:
    state = data.get("State") or {}
    ports = published_ports((data.get("NetworkSettings") or {}).get("Ports"))
    return ObservedContainer(
        id=data.get("Id", ""),
        name=str(data.get("Name", "")).lstrip("/"),
        image=(data.get("Config") or {}).get("Image", ""),
        image_id=data.get("Image", ""),
        state=state.get("Status", ""),
        health=(state.get("Health") or {}).get("Status"),
        labels=(data.get("Config") or {}).get("Labels") or {},
        ports=ports,
        created=data.get("Created", ""),
        finished=state.get("FinishedAt", "") if not str(state.get("FinishedAt", "")).startswith("0001") else "",
        networks=_networks_of(data),
    )


def _networks_of(data: dict[str, Any]) -> tuple[str, ...]:
    """The networks a container joins (a stopped one too: `docker start` needs every one of them)."""
    joined = list((data.get("NetworkSettings") or {}).get("Networks") or {})
    mode = str((data.get("HostConfig") or {}).get("NetworkMode") or "")
    if mode and mode not in ("default", "bridge", "host", "none") and not mode.startswith("container:"):
        joined.append(mode)
    return tuple(dict.fromkeys(joined))


def file_line(line: str, digests: dict[str, str] | None = None) -> ObservedFile | None:
    """`stat -c '%F|%a|%U|%G|%n'` output -> ObservedFile (the name is last: it may hold '|')."""
    parts = line.split("|", 4)
    if len(parts) != 5:
        return None
    kind, mode, owner, group, path = parts
    kind = "directory" if kind == "directory" else ("file" if "regular" in kind else "other")
    return ObservedFile(path, True, kind, (digests or {}).get(path, ""), mode.zfill(4), owner, group)


def sha256_lines(lines: list[str]) -> dict[str, str]:
    """`sha256sum` output -> path -> digest."""
    out = {}
    for line in lines:
        digest, sep, path = line.partition("  ")
        if sep and len(digest) == 64:
            out[path] = digest
    return out


def parse_probe(host: str, output: str) -> ObservedHost:
    """The probe's output as an ObservedHost (tested on captured real output)."""
    parts = sections(output)
    os_info = _keyvalues(parts.get("os", []))
    docker = _keyvalues(parts.get("docker", []))
    raw = "\n".join(parts.get("containers", [])).strip()
    containers = tuple(container(c) for c in (json.loads(raw) if raw.startswith("[") else []))
    images = {}
    for line in parts.get("images", []):
        image_id, _, reference = line.partition(" ")
        if reference and image_id != "-":
            images[reference] = image_id
    networks = {}
    for line in parts.get("networks", []):
        name, _, playbook = line.partition("|")
        if name.strip():
            networks[name.strip()] = playbook.strip()
    digests = sha256_lines(parts.get("sha256", []))
    files = {f.path: f for f in (file_line(line, digests) for line in parts.get("files", [])) if f}
    return ObservedHost(
        name=host,
        os_id=os_info.get("ID", ""),
        os_version=os_info.get("VERSION_ID", ""),
        package_manager=os_info.get("PM", ""),
        systemd=os_info.get("SYSTEMD") == "1",
        docker_installed=docker.get("INSTALLED") == "1",
        docker_running=docker.get("RUNNING") == "1",
        containers=containers,
        images=images,
        networks=networks,
        ungated=frozenset(n.strip() for n in parts.get("ungated", []) if n.strip()),
        rolled_back=frozenset(n.strip() for n in parts.get("rolledback", []) if n.strip()),
        holds=_holds(parts.get("holds", [])),
        owners=dict(line.split(" ", 1) for line in parts.get("owners", []) if " " in line.strip()),
        files=files,
        consul_binary=os_info.get("CONSUL_BINARY") == "1",
        consul_agent=os_info.get("CONSUL_AGENT") == "1",
        ingress_running=os_info.get("INGRESS_RUNNING") == "1",
        consul_reload_pending="pending" in (line.strip() for line in parts.get("reload", [])),
    )


def _holds(lines: list[str]) -> dict[str, tuple[str, str]]:
    """service -> (the playbook digest the hold refuses, the kept container it holds to)."""
    out = {}
    for line in lines:
        fields = line.split()
        if len(fields) == 3:
            out[fields[0]] = (fields[1], fields[2])
    return out


def unreachable(host: str, error: str) -> ObservedHost:
    return ObservedHost(name=host, reachable=False, error=error)


def saved_file(path: str, output: str) -> SavedFile:
    """files.read_back's answer -> the file as it was; raises ValueError when it cannot be read back."""
    head, _, body = output.partition("\n")
    if head.strip() == "absent":
        return SavedFile(path, None)
    fields = head.split()
    if len(fields) != 3 or not all(f.isdigit() for f in fields):
        raise ValueError(f"{path}: unexpected answer {head[:80]!r}")
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error:
        raise ValueError(f"{path}: its content could not be read back") from None
    return SavedFile(path, data, fields[0], fields[1], fields[2])
