"""Consul agent STAND-IN for the pushorch lab (not Consul): the subset of the agent HTTP API pushorch uses.

Serves on port 8500 (and/or HTTPS on 8501): register/deregister/list services, maintenance mode,
checks and health, reload (re-reading the config dir, /etc/consul.d, as `consul reload` does), the
KV store (cas, flags, acquire/release, recurse, keys, blocking queries on X-Consul-Index) and
sessions (TTL, renew, destroy, behavior=release, lock-delay). With an ACL token configured it
enforces default-deny: an unknown token gets 403 "ACL not found", no token gets 403 on writes and
single reads and ACL-filtered (empty) lists. HTTP and TCP checks run every interval.
Its settings come from /etc/ssh/lab/consul-agent.json when present (CONSUL_AGENT_CONFIG):
{"acl_token", "http_port" (-1: off), "https_port", "cert_file", "key_file", "ca_file"}.
The catalog view (/v1/health/service/NAME) spans the cluster as Consul's does: this agent's services
plus each peer agent's (the lab writes the peers' addresses into /etc/ssh/lab/consul-peers); a peer
that does not answer within half a second is left out, as Consul drops a failed node. Production
hosts run real Consul; this exists because no Consul agent can be installed from the package sources
the lab machines reach.
"""

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
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class Handler(BaseHTTPRequestHandler):
    # Kept-alive connections, as Consul's Go server keeps them (every reply has a Content-Length).
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return

    def reply(self, code: int, body: object = None, raw: bytes | None = None, headers: dict | None = None) -> None:
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if raw is None else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Consul-Default-ACL-Policy", "deny" if SETTINGS.get("acl_token") else "allow")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def indexed(self, body: object, code: int = 200) -> None:
        """A read that carries the blocking-query headers."""
        headers = {"X-Consul-Index": str(INDEX[0]), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
        if self.filtered:
            headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
        self.reply(code, body, headers=headers)

    def text(self, code: int, message: str) -> None:
        self.reply(code, raw=message.encode())

    def token(self) -> str:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        bearer = self.headers.get("Authorization", "")
        return (
            self.headers.get("X-Consul-Token")
            or (bearer[7:] if bearer.lower().startswith("bearer ") else "")
            or query.get("token", [""])[0]
        )

    def allowed(self, write: bool, listing: bool) -> bool:
        """ACLs as a default-deny agent applies them to the one token it knows (a management token).
        Answers 403 itself when refused; `self.filtered` says a list was emptied for an anonymous caller."""
        self.filtered = False
        wanted = SETTINGS.get("acl_token")
        given = self.token()
        if not wanted or given == wanted:
            return True
        if given:
            self.text(403, "ACL not found")
            return False
        if listing and not write:
            self.filtered = True
            return True
        self.text(403, "Permission denied: anonymous token lacks permission")
        return False

    def route(self) -> tuple[urllib.parse.ParseResult, list[str], dict[str, str]]:
        url = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        return url, url.path.strip("/").split("/"), query

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def block(self, query: dict[str, str]) -> None:
        """A blocking query: wait (holding nothing) until the index passes ?index= or ?wait= runs out."""
        if "index" not in query:
            return
        wait = min(duration(query.get("wait", "5m"), 300), 600)
        deadline = time.monotonic() + wait
        with LOCK:
            while INDEX[0] <= int(query["index"] or 0) and time.monotonic() < deadline:
                CHANGED.wait(deadline - time.monotonic())

    def forward(self, method: str, body: bytes = b"") -> bool:
        """Relay a KV/session request to the server agent (when this agent is not it)."""
        target = server()
        if not target:
            return False
        request = peer_url(target, self.path)
        request.method = method
        request.data = body if method in ("PUT", "DELETE") else None
        if self.token():
            request.add_header("X-Consul-Token", self.token())
        wait = duration(dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query)).get("wait", "0s"), 0)
        try:
            with urllib.request.urlopen(request, timeout=wait + 10, context=peer_context()) as response:
                code, data, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            code, data, headers = exc.code, exc.read(), exc.headers
        except OSError as exc:
            self.text(500, f"rpc error: no path to a server: {exc}")
            return True
        self.send_response(code)
        for name in ("Content-Type", "X-Consul-Index", "X-Consul-KnownLeader", "X-Consul-LastContact"):
            if headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def do_GET(self) -> None:
        url, parts, query = self.route()
        listing = (
            url.path in ("/v1/agent/services", "/v1/agent/checks", "/v1/session/list")
            or (parts[:3] == ["v1", "health", "service"])
            or (parts[:2] == ["v1", "kv"] and ("recurse" in query or "keys" in query))
        )
        if not self.allowed(False, listing):
            return
        if parts[:2] in (["v1", "kv"], ["v1", "session"]) and self.forward("GET"):
            return
        if parts[:2] == ["v1", "kv"]:
            return self.kv_get(kv_key(url.path), query)
        if parts[:2] == ["v1", "session"]:
            return self.session_get(parts, query)
        with LOCK:
            if url.path == "/v1/agent/self":
                return self.reply(200, {"Config": {"NodeName": NODE, "Version": "standin"}, "Member": {"Name": NODE}})
            if url.path == "/v1/agent/services":
                return self.reply(200, {} if self.filtered else {sid: public(s) for sid, s in SERVICES.items()})
            if url.path == "/v1/agent/checks":
                return self.reply(200, {} if self.filtered else agent_checks())
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
            passing = "passing" in query
            out = [
                e for e in catalog_health(parts[3]) if not passing or all(c["Status"] == "passing" for c in e["Checks"])
            ]
            return self.indexed([] if self.filtered else out)
        return self.reply(404, None)

    def kv_get(self, key: str, query: dict[str, str]) -> None:
        self.block(query)
        with LOCK:
            if "keys" in query:
                found = sorted(k for k in KV if k.startswith(key))
                sep = query.get("separator")
                if sep:
                    found = sorted({k[: k.index(sep, len(key)) + 1] if sep in k[len(key) :] else k for k in found})
                if self.filtered:
                    found = []
                return self.indexed(found) if found or self.filtered else self.indexed(None, 404)
            if "recurse" in query:
                found = [kv_public(k, e) for k, e in sorted(KV.items()) if k.startswith(key)]
                if self.filtered:
                    found = []
                return self.indexed(found) if found or self.filtered else self.indexed(None, 404)
            entry = KV.get(key)
            if entry is None:
                return self.indexed(None, 404)
            if "raw" in query:
                return self.reply(200, raw=entry["value"])
            return self.indexed([kv_public(key, entry)])

    def session_get(self, parts: list[str], query: dict[str, str]) -> None:
        self.block(query)
        with LOCK:
            if parts[2:3] == ["list"]:
                return self.indexed([] if self.filtered else [session_public(s, v) for s, v in SESSIONS.items()])
            if parts[2:3] == ["info"] and len(parts) == 4:
                found = SESSIONS.get(parts[3])
                return self.indexed([session_public(parts[3], found)] if found else [])
        return self.reply(404, None)

    def do_DELETE(self) -> None:
        url, parts, query = self.route()
        if not self.allowed(True, False):
            return
        if parts[:2] != ["v1", "kv"]:
            return self.reply(404)
        if self.forward("DELETE"):
            return
        key = kv_key(url.path)
        with LOCK:
            if "cas" in query:
                entry = KV.get(key)
                if entry is None or entry["modify"] != int(query["cas"]):
                    return self.reply(200, False)
            gone = [k for k in KV if k.startswith(key)] if "recurse" in query else [key]
            for k in gone:
                KV.pop(k, None)
            bump()
        return self.reply(200, True)

    def do_PUT(self) -> None:
        url, parts, query = self.route()
        body = self.body()
        if not self.allowed(True, False):
            return
        if parts[:2] in (["v1", "kv"], ["v1", "session"]) and self.forward("PUT", body):
            return
        if parts[:2] == ["v1", "kv"]:
            with LOCK:
                answer = kv_put(kv_key(url.path), query, body)
            if answer == "invalid session":
                return self.text(500, f'invalid session "{query.get("acquire")}"')
            return self.reply(200, answer)
        if parts[:2] == ["v1", "session"]:
            return self.session_put(parts, body)
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
            with LOCK:
                if parts[4] not in SERVICES:
                    return self.text(404, f'Unknown service ID "{parts[4]}"')
                # Go's strconv.ParseBool, as Consul parses ?enable= (py-consul sends "True").
                if query.get("enable", "false") in ("1", "t", "T", "true", "TRUE", "True"):
                    MAINTENANCE[parts[4]] = query.get("reason") or "Maintenance mode is enabled for this service"
                else:
                    MAINTENANCE.pop(parts[4], None)
            return self.reply(200)
        return self.reply(404)

    def session_put(self, parts: list[str], body: bytes) -> None:
        with LOCK:
            if parts[2:3] == ["create"]:
                # Consul decodes JSON keys case-insensitively (py-consul sends "ttl", "lockdelay").
                raw = {k.lower(): v for k, v in json.loads(body or b"{}").items()}
                ttl_text = str(raw.get("ttl") or "")
                ttl = duration(ttl_text, 0)
                if ttl_text and not 10 <= ttl <= 86400:
                    return self.text(400, f"Invalid Session TTL '{int(ttl * 1e9)}', must be between [10s=24h0m0s]")
                behavior = raw.get("behavior") or "release"
                if behavior not in ("release", "delete"):
                    return self.text(400, f"Invalid Behavior setting '{behavior}'")
                sid = str(uuid.uuid4())
                SESSIONS[sid] = {
                    "name": raw.get("name", ""),
                    "ttl": ttl,
                    "ttl_text": ttl_text,
                    "behavior": behavior,
                    "lock_delay": duration(raw.get("lockdelay", "15s"), 15),
                    "create": bump(),
                    "expires": time.monotonic() + ttl if ttl else 0,
                }
                return self.reply(200, {"ID": sid})
            if parts[2:3] == ["renew"] and len(parts) == 4:
                session = SESSIONS.get(parts[3])
                if session is None:
                    return self.text(404, f"Session id '{parts[3]}' not found")
                if session["ttl"]:
                    session["expires"] = time.monotonic() + session["ttl"]
                return self.reply(200, [session_public(parts[3], session)])
            if parts[2:3] == ["destroy"] and len(parts) == 4:
                invalidate(parts[3])
                return self.reply(200, True)
        return self.reply(404)


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


def serve(port: int, context: ssl.SSLContext | None) -> None:
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main() -> None:
    os.makedirs(CONFIG_DIR, exist_ok=True)
    load_config_dir()
    threading.Thread(target=checker, daemon=True).start()
    threading.Thread(target=reaper, daemon=True).start()
    # On every address, as a Consul client agent's HTTP API often is: peers ask each other for the catalog.
    http_port = int(SETTINGS.get("http_port", os.environ.get("CONSUL_HTTP_PORT", "8500")))
    https_port = int(SETTINGS.get("https_port") or 0)
    servers = []
    if https_port:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(SETTINGS["cert_file"], SETTINGS["key_file"])
        servers.append(threading.Thread(target=serve, args=(https_port, context), daemon=True))
    if http_port > 0:
        servers.append(threading.Thread(target=serve, args=(http_port, None), daemon=True))
    for thread in servers:
        thread.start()
    for thread in servers:
        thread.join()


if __name__ == "__main__":
    main()
