"""Consul agent STAND-IN for the pushorch lab (not Consul): the subset of the agent HTTP API pushorch uses.

Serves on port 8500 (and/or HTTPS on 8501): register/deregister/list services, maintenance mode,
checks and health, reload (re-reading the config dir, /etc/consul.d, as `consul reload` does), the
KV store (cas, flags, acquire/release, recurse, keys, blocking queries on X-Consul-Index) and
sessions (TTL, renew, destroy, behavior=release, lock-delay). With an ACL token configured it
enforces default-deny: an unknown token gets 403 "ACL not found", no token gets 403 on writes and
single reads and ACL-filtered (empty) lists. HTTP and TCP checks run every interval.
While /run/consul-standin.fail exists it answers every request 500 (a fault bench/soak injects).
Its settings come from /etc/ssh/lab/consul-agent.json when present (CONSUL_AGENT_CONFIG):
{"acl_token", "http_port" (-1: off), "https_port", "cert_file", "key_file", "ca_file"}.
The catalog view (/v1/health/service/NAME) spans the cluster as Consul's does: this agent's services
plus each peer agent's (the lab writes the peers' addresses into /etc/ssh/lab/consul-peers); a peer
that does not answer within half a second is left out, as Consul drops a failed node. Production
hosts run real Consul; this exists because no Consul agent can be installed from the package sources
the lab machines reach.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from consul_store import (  # the sibling file: hosts run this script from the mounted directory
    CHANGED,
    CONFIG_DIR,
    INDEX,
    KV,
    LOCK,
    MAINTENANCE,
    NODE,
    SERVICES,
    SESSIONS,
    SETTINGS,
    STATUS,
    agent_checks,
    bump,
    catalog_health,
    checker,
    duration,
    health,
    invalidate,
    kv_key,
    kv_public,
    kv_put,
    load_config_dir,
    local_health,
    normalise,
    peer_context,
    peer_url,
    public,
    reaper,
    server,
    session_public,
)

FAILING = "/run/consul-standin.fail"  # while this file exists every request gets a 500


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
        if os.path.exists(FAILING):  # a fault the soak injects: an agent that answers, but only 500
            self.text(500, "rpc error making call: the soak's fault (remove " + FAILING + ")")
            return False
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
