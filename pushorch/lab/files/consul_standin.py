"""Consul agent STAND-IN for the pushorch lab (not Consul): the subset of the agent HTTP API pushorch uses.

Serves on port 8500: register/deregister/list services, maintenance mode, checks and health,
and reload (re-reading the config dir, /etc/consul.d, as `consul reload` does). HTTP and TCP checks
run every interval. The catalog view (/v1/health/service/NAME) spans the cluster as Consul's does:
this agent's services plus each peer agent's (the lab writes the peers' addresses into
/etc/ssh/lab/consul-peers); a peer that does not answer within half a second is left out, as Consul
drops a failed node. Production hosts run real Consul; this exists because no Consul agent can be
installed from the package sources the lab machines reach.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG_DIR = os.environ.get("CONSUL_CONFIG_DIR", "/etc/consul.d")
LOCK = threading.Lock()
SERVICES: dict[str, dict] = {}  # id -> normalised service (lowercase keys), with "source": file|api
STATUS: dict[str, tuple[str, str]] = {}  # id -> (passing|critical, output)
MAINTENANCE: dict[str, str] = {}  # id -> reason
NODE = socket.gethostname()
PEERS_FILE = os.environ.get("CONSUL_PEERS_FILE", "/etc/ssh/lab/consul-peers")


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
    url = f"http://{peer}/v1/agent/health/service/name/{urllib.parse.quote(name)}"
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
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
    """Re-read the config dir: file-defined services replace the previous file-defined ones."""
    errors, found = [], {}
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        entries = ([data["service"]] if "service" in data else []) + list(data.get("services", []))
        for entry in entries:
            service = normalise(entry, "file")
            found[service["id"]] = service
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


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def reply(self, code: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        parts = url.path.strip("/").split("/")
        with LOCK:
            if url.path == "/v1/agent/self":
                return self.reply(200, {"Config": {"NodeName": NODE, "Version": "standin"}, "Member": {"Name": NODE}})
            if url.path == "/v1/agent/services":
                return self.reply(200, {sid: public(s) for sid, s in SERVICES.items()})
            if url.path == "/v1/agent/checks":
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
                return self.reply(200, checks)
            if parts[:5] == ["v1", "agent", "health", "service", "id"] and len(parts) == 6:
                service = SERVICES.get(parts[5])
                if service is None:
                    return self.reply(404, None)
                return self.reply(200, {"AggregatedStatus": health(parts[5]), "Service": public(service)})
            if parts[:5] == ["v1", "agent", "health", "service", "name"] and len(parts) == 6:
                found = local_health(parts[5])
                if not found:
                    return self.reply(404, None)
                worst = {s["AggregatedStatus"] for s in found}
                code = 503 if "critical" in worst else 429 if "warning" in worst else 200
                return self.reply(code, found)
        if parts[:3] == ["v1", "health", "service"] and len(parts) == 4:
            passing = "passing" in urllib.parse.parse_qs(url.query, keep_blank_values=True)
            out = [
                e for e in catalog_health(parts[3]) if not passing or all(c["Status"] == "passing" for c in e["Checks"])
            ]
            return self.reply(200, out)
        return self.reply(404, None)

    def do_PUT(self) -> None:
        url = urllib.parse.urlparse(self.path)
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/v1/agent/reload":
            errors = load_config_dir()
            return self.reply(500 if errors else 200, {"errors": errors} if errors else None)
        if url.path == "/v1/agent/service/register":
            service = normalise(json.loads(body or b"{}"), "api")
            with LOCK:
                SERVICES[service["id"]] = service
            return self.reply(200)
        if parts[:4] == ["v1", "agent", "service", "deregister"] and len(parts) == 5:
            with LOCK:
                SERVICES.pop(parts[4], None)
                STATUS.pop(parts[4], None)
                MAINTENANCE.pop(parts[4], None)
            return self.reply(200)
        if parts[:4] == ["v1", "agent", "service", "maintenance"] and len(parts) == 5:
            query = urllib.parse.parse_qs(url.query)
            with LOCK:
                if parts[4] not in SERVICES:
                    return self.reply(404)
                if query.get("enable", ["false"])[0] == "true":
                    MAINTENANCE[parts[4]] = query.get("reason", ["maintenance"])[0]
                else:
                    MAINTENANCE.pop(parts[4], None)
            return self.reply(200)
        return self.reply(404)


def main() -> None:
    os.makedirs(CONFIG_DIR, exist_ok=True)
    load_config_dir()
    threading.Thread(target=checker, daemon=True).start()
    # On every address, as a Consul client agent's HTTP API often is: peers ask each other for the catalog.
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("CONSUL_HTTP_PORT", "8500"))), Handler).serve_forever()


if __name__ == "__main__":
    main()
