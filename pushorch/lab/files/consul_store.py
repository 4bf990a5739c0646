"""The state of the pushorch lab's Consul STAND-IN (not Consul): its settings, services and checks,
the KV store and sessions, and the catalog across peer agents. `consul_standin.py` serves it over
HTTP; both are mounted into each lab host and run from there (the server imports this file as its
sibling)."""

from __future__ import annotations

import base64
import glob
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

CONFIG_DIR = os.environ.get("CONSUL_CONFIG_DIR", "/etc/consul.d")
LOCK = threading.Lock()
SERVICES: dict[str, dict] = {}  # id -> normalised service (lowercase keys), with "source": file|api
STATUS: dict[str, tuple[str, str]] = {}  # id -> (passing|critical, output)
MAINTENANCE: dict[str, str] = {}  # id -> reason
NODE = socket.gethostname()
PEERS_FILE = os.environ.get("CONSUL_PEERS_FILE", "/etc/ssh/lab/consul-peers")
CONFIG_FILE = os.environ.get("CONSUL_AGENT_CONFIG", "/etc/ssh/lab/consul-agent.json")
KV: dict[str, dict] = {}  # key -> {value: bytes, flags, create, modify, lock, session}
SESSIONS: dict[str, dict] = {}  # id -> {name, ttl, behavior, lock_delay, create, expires}
DELAYED: dict[str, float] = {}  # key -> monotonic time until which acquire is refused (lock-delay)
CHANGED = threading.Condition(LOCK)  # notified on every KV/session change (blocking queries)
INDEX = [1]  # the raft index stand-in: one counter for every write


def load_settings() -> dict:
    try:
        with open(CONFIG_FILE, encoding="utf-8") as handle:
            return dict(json.load(handle))
    except (OSError, ValueError):
        return {}


SETTINGS = load_settings()
# The KV store and sessions live on the cluster's servers: every agent but the lab's first host
# forwards those requests to it (its address in this file), as Consul clients forward to servers.
SERVER_FILE = os.environ.get("CONSUL_SERVER_FILE", "/etc/ssh/lab/consul-server")


def server() -> str:
    try:
        with open(SERVER_FILE, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def bump() -> int:
    """The next index (caller holds LOCK); wakes blocking queries."""
    INDEX[0] += 1
    CHANGED.notify_all()
    return INDEX[0]


def peer_url(peer: str, path: str) -> urllib.request.Request:
    scheme = "https" if SETTINGS.get("https_port") else "http"
    host, _, port = peer.rpartition(":")
    port = str(SETTINGS.get("https_port") or port)
    request = urllib.request.Request(f"{scheme}://{host}:{port}{path}")
    if SETTINGS.get("acl_token"):
        request.add_header("X-Consul-Token", SETTINGS["acl_token"])
    return request


def peer_context() -> ssl.SSLContext | None:
    if not SETTINGS.get("https_port"):
        return None
    context = ssl.create_default_context(cafile=SETTINGS.get("ca_file"))
    context.check_hostname = False  # peers are reached by address; the CA is what is checked
    return context


def peers() -> list[str]:
    try:
        with open(PEERS_FILE, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError:
        return []


def local_health(name: str) -> list[dict]:
    """This agent's instances of a service, as /v1/agent/health/service/name/NAME lists them."""
    return [
        {
            "AggregatedStatus": health(sid),
            "Service": public(s),
            "Checks": [{"Node": NODE, "ServiceID": sid, "ServiceName": name, "Status": health(sid)}],
        }
        for sid, s in SERVICES.items()
        if s["name"] == name
    ]


def peer_health(peer: str, name: str) -> list[dict]:
    url = peer_url(peer, f"/v1/agent/health/service/name/{urllib.parse.quote(name)}")
    try:
        with urllib.request.urlopen(url, timeout=0.5, context=peer_context()) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:  # 429 warning / 503 critical still carry the list
        try:
            return json.loads(exc.read() or b"[]")
        except ValueError:
            return []
    except (OSError, ValueError):
        return []


def catalog_health(name: str) -> list[dict]:
    """Every agent's instances of a service: /v1/health/service/NAME entries (Node, Service, Checks)."""
    with LOCK:
        mine = local_health(name)
    with ThreadPoolExecutor(8) as pool:
        others = list(pool.map(lambda p: peer_health(p, name), peers()))
    entries = []
    for found in [mine, *others]:
        for item in found:
            node = (item.get("Checks") or [{}])[0].get("Node", "")
            entries.append({"Node": {"Node": node}, "Service": item["Service"], "Checks": item["Checks"]})
    return entries


def duration(text: object, default: float) -> float:
    if isinstance(text, (int, float)):
        return float(text) / 1e9 if text > 1e6 else float(text)
    if not isinstance(text, str) or not text:
        return default
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return default
    return default


def normalise(raw: dict, source: str) -> dict:
    lower = {k.lower(): v for k, v in raw.items()}
    check = lower.get("check") or (lower.get("checks") or [None])[0] or {}
    check = {k.lower(): v for k, v in check.items()} if isinstance(check, dict) else {}
    return {
        "id": lower.get("id") or lower.get("name"),
        "name": lower.get("name"),
        "tags": lower.get("tags") or [],
        "meta": lower.get("meta") or {},
        "port": lower.get("port") or 0,
        "address": lower.get("address") or "",
        "check": check,
        "source": source,
    }


def public(service: dict) -> dict:
    return {
        "ID": service["id"],
        "Service": service["name"],
        "Tags": service["tags"],
        "Meta": service["meta"],
        "Port": service["port"],
        "Address": service["address"],
        "Datacenter": "lab",
    }


def load_config_dir() -> list[str]:
    """Re-read the config dir: file-defined services replace the previous file-defined ones. As
    Consul's agent (agent/agent.go ReloadConfig: the new configuration is built and validated before
    anything is applied), a bad file changes nothing: the reload fails and the agent keeps what it had."""
    errors, found = [], {}
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            entries = ([data["service"]] if "service" in data else []) + list(data.get("services", []))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            errors.append(f"Error decoding '{path}': {exc}")
            continue
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("name"):
                errors.append(f"Failed reloading services: {path}: a service definition needs a name")
                continue
            service = normalise(entry, "file")
            found[service["id"]] = service
    if errors:
        return errors
    with LOCK:
        for sid in [s for s, v in SERVICES.items() if v["source"] == "file" and s not in found]:
            SERVICES.pop(sid)
            STATUS.pop(sid, None)
        SERVICES.update(found)
    return errors


def probe(service: dict) -> tuple[str, str]:
    check, timeout = service["check"], duration(service["check"].get("timeout"), 2)
    try:
        if check.get("http"):
            with urllib.request.urlopen(check["http"], timeout=timeout) as response:
                return ("passing", f"HTTP GET {check['http']}: {response.status}")
        if check.get("tcp"):
            host, _, port = str(check["tcp"]).rpartition(":")
            with socket.create_connection((host, int(port)), timeout=timeout):
                return ("passing", f"TCP connect {check['tcp']}: Success")
    except Exception as exc:
        return ("critical", f"{type(exc).__name__}: {exc}")
    return ("passing", "no check")


def checker() -> None:
    next_run: dict[str, float] = {}
    while True:
        now = time.monotonic()
        with LOCK:
            due = [dict(s) for sid, s in SERVICES.items() if next_run.get(sid, 0) <= now]
        for service in due:
            result = probe(service)
            with LOCK:
                STATUS[service["id"]] = result
            next_run[service["id"]] = now + duration(service["check"].get("interval"), 10)
        time.sleep(0.2)


def health(sid: str) -> str:
    if sid in MAINTENANCE:
        return "critical"
    return STATUS.get(sid, ("critical", "not yet checked"))[0]


def kv_key(path: str) -> str:
    """The key of /v1/kv/KEY, its trailing slash kept (a prefix for ?keys and ?recurse)."""
    return urllib.parse.unquote(path[len("/v1/kv/") :])


def kv_public(key: str, entry: dict) -> dict:
    return {
        "Key": key,
        "Value": base64.b64encode(entry["value"]).decode() if entry["value"] else None,
        "Flags": entry["flags"],
        "CreateIndex": entry["create"],
        "ModifyIndex": entry["modify"],
        "LockIndex": entry["lock"],
        **({"Session": entry["session"]} if entry["session"] else {}),
    }


def session_public(sid: str, session: dict) -> dict:
    return {
        "ID": sid,
        "Name": session["name"],
        "Node": NODE,
        "LockDelay": int(session["lock_delay"] * 1e9),
        "Behavior": session["behavior"],
        "TTL": session["ttl_text"],
        "NodeChecks": ["serfHealth"],
        "ServiceChecks": None,
        "CreateIndex": session["create"],
        "ModifyIndex": session["create"],
    }


def invalidate(sid: str) -> None:
    """Destroy a session (caller holds LOCK): its locks are released (or deleted), with lock-delay."""
    session = SESSIONS.pop(sid, None)
    if session is None:
        return
    for key, entry in list(KV.items()):
        if entry["session"] == sid:
            if session["behavior"] == "delete":
                KV.pop(key)
            else:
                entry["session"] = ""
                entry["modify"] = INDEX[0] + 1
            if session["lock_delay"] > 0:
                DELAYED[key] = time.monotonic() + session["lock_delay"]
    bump()


def reaper() -> None:
    """Sessions whose TTL ran out are invalidated (Consul allows up to twice the TTL; this takes one)."""
    while True:
        with LOCK:
            now = time.monotonic()
            for sid in [s for s, v in SESSIONS.items() if v["expires"] and v["expires"] <= now]:
                invalidate(sid)
        time.sleep(0.2)


def kv_put(key: str, query: dict, body: bytes) -> object:
    """PUT /v1/kv/KEY: true/false as Consul answers (cas, acquire, release, flags)."""
    entry = KV.get(key)
    if "cas" in query:
        cas = int(query["cas"])
        if (cas == 0 and entry is not None) or (cas != 0 and (entry is None or entry["modify"] != cas)):
            return False
    flags = int(query.get("flags", entry["flags"] if entry else 0))
    session = entry["session"] if entry else ""
    lock = entry["lock"] if entry else 0
    if "acquire" in query:
        sid = query["acquire"]
        if sid not in SESSIONS:
            return "invalid session"
        if session and session != sid:
            return False
        if not session and DELAYED.get(key, 0) > time.monotonic():
            return False
        if session != sid:
            lock += 1
        session = sid
    elif "release" in query:
        if session != query["release"]:
            return False
        session = ""
    index = bump()
    KV[key] = {
        "value": body,
        "flags": flags,
        "create": entry["create"] if entry else index,
        "modify": index,
        "lock": lock,
        "session": session,
    }
    return True


def agent_checks() -> dict:
    """/v1/agent/checks (caller holds LOCK): each service's check, and maintenance mode as Consul shows it."""
    checks = {
        f"service:{sid}": {
            "CheckID": f"service:{sid}",
            "ServiceID": sid,
            "ServiceName": s["name"],
            "Status": STATUS.get(sid, ("critical", ""))[0],
            "Output": STATUS.get(sid, ("", ""))[1],
        }
        for sid, s in SERVICES.items()
    }
    # As Consul does: maintenance mode is a critical check of its own, its reason in Notes.
    for sid, reason in MAINTENANCE.items():
        if sid in SERVICES:
            checks[f"_service_maintenance:{sid}"] = {
                "CheckID": f"_service_maintenance:{sid}",
                "Name": "Service Maintenance Mode",
                "ServiceID": sid,
                "ServiceName": SERVICES[sid]["name"],
                "Status": "critical",
                "Notes": reason,
            }
    return checks
