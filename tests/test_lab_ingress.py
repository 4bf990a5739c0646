"""The ingress on the lab: HAProxy on an edge host, installed and configured by pushorch, and a client
sending requests through it while a rollout moves the instances behind it (docs/ingress.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.ingress import EDGE_PLAY, HOSTNAME, Client, config_play, edge_address, through_ingress
from bench.ingress import playbook as bench_playbook
from pushorch.lab.cluster import Lab
from tests.conftest import start_lab
from tests.test_lab_apply import _apply, _sh
from tests.test_lab_rollout import _running

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def edge_lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """3 Docker hosts and two edge hosts, a lab of its own (other modules' `lab up` would remove them)."""
    lab, inventory = start_lab(tmp_path_factory, bare=0, edges=2, name="ingress")
    yield lab, inventory
    lab.down(lambda _: None)


def _through_ingress(inventory: Path, run: Callable[[], Any]) -> tuple[Any, list[str], Counter[str]]:
    return through_ingress(edge_address(inventory), run)


def test_a_stop_first_rollout_through_the_ingress_fails_no_request(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = edge_lab
    playbook = bench_playbook(tmp_path)
    status, changes, _ = _apply(run_cli, inventory, playbook)
    assert status == 0, "\n".join(
        str(c.get("message")) for c in changes if c.get("status") not in ("changed", "progress")
    )
    # pushorch installed HAProxy, and its configuration names the three instances.
    config = _sh(inventory, "cat /etc/haproxy/haproxy.cfg", "edge-1")["edge-1"]
    assert all(f"server lab-{i}:18400 " in config for i in (1, 2, 3)), config
    (status, changes, _), failed, answers = _through_ingress(
        inventory, lambda: _apply(run_cli, inventory, "-e", "v=v2", playbook)
    )
    assert status == 0, changes
    assert _running(inventory, "web") == {f"lab-{i}": ["v2"] for i in (1, 2, 3)}
    assert failed == [], failed
    assert answers["v1"] > 20 and answers["v2"] > 20, answers
    # A converged run changes nothing on the edge either.
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0 and [c for c in changes if c.get("status") == "changed"] == [], changes
    # status reads each instance's state from the ingress itself.
    _sh(
        inventory,
        "echo 'set server be_web/lab-2:18400 state maint' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock",
        "edge-1",
    )
    shown = run_cli("status", "-i", str(inventory), "-e", "v=v2", "--json", playbook)
    rows = {r["host"]: r["ingress"] for r in json.loads(shown.out)["services"]}
    both = "edge-1 UP, edge-2 UP"
    assert rows == {"lab-1": both, "lab-2": "edge-1 MAINT, edge-2 UP", "lab-3": both}, shown.out
    _sh(
        inventory,
        "echo 'set server be_web/lab-2:18400 state ready' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock",
        "edge-1",
    )


def test_a_bad_version_reverted_restart_and_rollback_fail_no_request_through_the_ingress(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = edge_lab
    playbook = bench_playbook(tmp_path)
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    # A version that never passes its gate: the first host goes back to v2, the rollout stops (exit 6).
    (status, changes, _), failed, answers = _through_ingress(
        inventory, lambda: _apply(run_cli, inventory, "-e", "v=broken", playbook)
    )
    assert status == 6, changes
    assert _running(inventory, "web") == {f"lab-{i}": ["v2"] for i in (1, 2, 3)}
    assert failed == [] and set(answers) == {"v2"}, (failed, answers)
    # restart: each instance drained, restarted, gated, ready again.
    done, failed, _ = _through_ingress(
        inventory, lambda: run_cli("restart", "-i", str(inventory), "-e", "v=v2", playbook, "web")
    )
    assert done.status == 0, done.out + done.err
    assert failed == [], failed
    # rollback: back to v1's kept containers, host by host.
    done, failed, answers = _through_ingress(
        inventory, lambda: run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, "web")
    )
    assert done.status == 0, done.out + done.err
    assert _running(inventory, "web") == {f"lab-{i}": ["v1"] for i in (1, 2, 3)}
    assert failed == [] and answers["v1"] > 20, (failed, answers)


def test_a_bad_config_reverted_by_its_gate_fails_no_request_through_the_ingress(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """A config file the service's gate refuses: the first host's instance is drained, restarted on the
    bad file, fails its gate, gets the good file back and is ready again; no request fails meanwhile."""
    _, inventory = edge_lab
    playbook = tmp_path / "cfg.yml"
    playbook.write_text(json.dumps([config_play(), EDGE_PLAY]))
    assert _apply(run_cli, inventory, str(playbook))[0] == 0
    before = _sh(inventory, "docker ps -q --filter label=pushorch.service=cfg")
    (status, changes, _), failed, answers = through_ingress(
        edge_address(inventory), lambda: _apply(run_cli, inventory, "-e", "conf=bad", str(playbook)), f"cfg.{HOSTNAME}"
    )
    assert status == 6, changes  # the gate failed on the first host: reverted, the rollout stopped
    assert failed == [] and answers["v1"] > 20, (failed, answers)
    assert set(_sh(inventory, "cat /etc/bench-cfg/app.conf").values()) == {"good\n"}  # the good file back
    assert _sh(inventory, "docker ps -q --filter label=pushorch.service=cfg") == before  # the same instances
    assert run_cli("plan", "-i", str(inventory), "--detailed-exitcode", str(playbook)).status == 0


def test_an_ingress_host_that_is_down_stops_the_rollout_before_any_instance_stops(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = edge_lab
    playbook = bench_playbook(tmp_path)
    assert _apply(run_cli, inventory, playbook)[0] == 0  # v1 everywhere, both ingresses configured
    subprocess.run(["docker", "stop", "-t", "0", lab.container("edge-2")], check=True, capture_output=True)
    try:
        (status, changes, _), failed, _ = _through_ingress(
            inventory, lambda: _apply(run_cli, inventory, "-e", "v=v2", playbook)
        )
        # edge-2 may still send requests to an instance (it is down for this controller only, as far
        # as anyone can tell): no instance stops, and the reason names it.
        assert status != 0
        assert _running(inventory, "web") == {f"lab-{i}": ["v1"] for i in (1, 2, 3)}
        assert failed == [], failed
        reasons = " ".join(str(c.get("message")) for c in changes)
        assert "ingress edge-2: not connected" in reasons and "--limit" in reasons, changes
        # Left out with --limit, the rollout goes on through edge-1 alone.
        status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", "-l", "all:!edge-2", playbook)
        assert status == 0, changes
        assert _running(inventory, "web") == {f"lab-{i}": ["v2"] for i in (1, 2, 3)}
    finally:
        lab.up(3, 0, lambda _: None, edges=2)
    # Back: its proxy started again with the configuration it missed.
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0, changes
    assert "server lab-1:18400 " in _sh(inventory, "cat /etc/haproxy/haproxy.cfg", "edge-2")["edge-2"]


def _ask(inventory: Path, edge: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(edge_address(inventory, edge), 80, timeout=5)
    try:
        connection.request("GET", "/version", headers={"Host": "app.example.com"})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def test_maintenance_makes_every_ingress_answer_the_maintenance_page_and_a_rollout_does_not_end_it(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = edge_lab
    playbook = bench_playbook(tmp_path)
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    done = run_cli("maintenance", "-i", str(inventory), "-e", "v=v2", "enable", playbook, "web")
    assert done.status == 0, done.out + done.err
    for edge in ("edge-1", "edge-2"):
        status, page = _ask(inventory, edge)
        assert status == 503 and "Down for maintenance" in page, (edge, status, page)
    # A rollout meanwhile replaces the instances; the ingress keeps them out until maintenance ends.
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v1", playbook)
    assert status == 0, changes
    assert _ask(inventory, "edge-1")[0] == 503
    done = run_cli("maintenance", "-i", str(inventory), "-e", "v=v1", "disable", playbook, "web")
    assert done.status == 0, done.out + done.err
    assert [_ask(inventory, e) for e in ("edge-1", "edge-2")] == [(200, "v1\n")] * 2


REPLICATED = """
- hosts: docker
  services:
    - name: rep
      image: "{{ lab_registry }}/pushorch/demo-app:v1"
      ports: ["18410:8080"]
      health: {http: {path: /health, port: 8080}, interval: 200ms, timeout: 1s}
      update: {parallelism: 1, min_healthy_time: 1s, healthy_deadline: 20s}
      replicas: 2
      failover: {after: 3s}
      ingress: {hosts: [rep.example.com]}
- hosts: edge
  ingress: {http_port: 80}
"""


def test_a_stopped_host_loses_requests_only_within_the_proxy_s_check_window_and_its_instance_moves(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = edge_lab
    playbook = tmp_path / "rep.yml"
    playbook.write_text(REPLICATED)
    assert _apply(run_cli, inventory, str(playbook))[0] == 0
    before = [h for h, versions in _running(inventory, "rep").items() if versions]
    victim, address = before[0], edge_address(inventory)
    with Client(address, hostname="rep.example.com") as fast, contextlib.ExitStack() as stack:
        slow = [stack.enter_context(Client(address, "/cgi-bin/slow", "rep.example.com")) for _ in range(6)]
        time.sleep(1)
        stopped = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "0", lab.container(victim)], check=True, capture_output=True)
        try:
            run_cli("reconcile", "-i", str(inventory), str(playbook))  # the record: victim unreachable since now
            time.sleep(4)
            moved = run_cli("reconcile", "-i", str(inventory), str(playbook))
            time.sleep(2)
        finally:
            lab.up(3, 0, lambda _: None, edges=2)
    assert f"{victim}" in moved.err or moved.status == 4, moved.out + moved.err
    after = [h for h, versions in _running(inventory, "rep").items() if versions and h != victim]
    assert len(after) == 2, _running(inventory, "rep")
    config = _sh(inventory, "cat /etc/haproxy/haproxy.cfg", "edge-1")["edge-1"]
    rep = config[config.index("\nbackend be_rep\n") :].split("\n\nbackend ")[0]
    assert all(f"server {h}:18410 " in rep for h in after) and f"server {victim}:" not in rep, (victim, after, rep)
    # Every failed request came within HAProxy's window: two failed checks a second apart, plus its
    # 2 s connect timeout and a slow request's 0.3 s (a margin of 1 s for this machine).
    late = [round(t - stopped, 1) for c in [fast, *slow] for t in c.failed_at if t - stopped > 5.3]
    failed = [f for c in [fast, *slow] for f in c.failures]
    print(
        f"host stopped: {len(failed)} failed requests of {len(failed) + sum(fast.answers.values()) + sum(sum(c.answers.values()) for c in slow)}"
    )
    assert late == [], (late, failed)
    assert sum(fast.answers.values()) > 100
    assert run_cli("reconcile", "-i", str(inventory), str(playbook)).status == 0  # the victim's stale instance goes


def _self_signed(directory: Path, hostname: str) -> Path:
    """A certificate for `hostname` and its key, beside the playbook (cert.pem, key.pem)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "key.pem").write_bytes(pem)
    return directory / "cert.pem"


HOST = "app.example.com"


def test_a_service_with_tls_is_served_over_https_and_http_is_redirected(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    import socket
    import ssl

    _, inventory = edge_lab
    ca = _self_signed(tmp_path, HOST)
    playbook = Path(bench_playbook(tmp_path))
    playbook.write_text(
        playbook.read_text().replace(
            "ingress: {hosts: [app.example.com]}",
            "ingress: {hosts: [app.example.com], tls: {certificate: !secret_file cert.pem, key: !secret_file key.pem}}",
        )
    )
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", str(playbook))
    assert status == 0, changes
    assert "PRIVATE KEY" not in json.dumps(changes)
    address = edge_address(inventory)
    context = ssl.create_default_context(cafile=str(ca))  # the name it verifies: app.example.com
    with context.wrap_socket(socket.create_connection((address, 443), timeout=5), server_hostname=HOST) as tls:
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nv2\n"), answer
    plain = http.client.HTTPConnection(address, 80, timeout=5)
    plain.request("GET", "/version", headers={"Host": "app.example.com"})
    redirected = plain.getresponse()
    assert redirected.status == 301 and redirected.getheader("location") == "https://app.example.com/version"
    mode = _sh(inventory, f"stat -c %a {'/etc/haproxy/certs/web.pem'}", "edge-1")["edge-1"].strip()
    assert mode == "600"


def test_a_compose_file_s_x_pushorch_ingress_routes_its_service_through_the_ingress(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = edge_lab
    registry = json.loads(inventory.read_text().split("\n", 1)[1])["all"]["vars"]["lab_registry"]
    (tmp_path / "compose.yaml").write_text(f"""
x-pushorch: {{hosts: docker, ingress: {{hosts: edge}}}}
services:
  shop:
    image: {registry}/pushorch/demo-app:v2
    ports: ["18420:8080"]
    healthcheck: {{test: [CMD, wget, -q, -O-, http://127.0.0.1:8080/health], interval: 1s}}
    x-pushorch: {{ingress: {{hosts: [shop.example.com]}}}}
""")
    status, changes, _ = _apply(run_cli, inventory, str(tmp_path / "compose.yaml"))
    assert status == 0, changes
    for edge in ("edge-1", "edge-2"):
        connection = http.client.HTTPConnection(edge_address(inventory, edge), 80, timeout=5)
        connection.request("GET", "/version", headers={"Host": "shop.example.com"})
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (200, b"v2\n"), edge
    # The earlier tests' service, which this run was not given, is still routed (a 301 to HTTPS since
    # the TLS test; no route at all would be a 404): its fragments stayed.
    assert _ask(inventory, "edge-1")[0] == 301


def test_a_start_first_service_moves_through_the_ingress_at_the_ports_docker_chose(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """start-first behind the ingress: each new instance (a port Docker chose) is added to every
    ingress after its gate, the old one drained there, stopped, and removed; the host's server file
    names the new one, so the next run changes nothing. A bad version, restart and rollback too."""
    _, inventory = edge_lab
    playbook = bench_playbook(tmp_path, order="start-first")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    (status, changes, _), failed, answers = _through_ingress(
        inventory, lambda: _apply(run_cli, inventory, "-e", "v=v2", playbook)
    )
    assert status == 0, changes
    assert _running(inventory, "web") == {f"lab-{i}": ["v2"] for i in (1, 2, 3)}
    assert failed == [] and answers["v1"] > 20 and answers["v2"] > 20, (failed, answers)
    for edge in ("edge-1", "edge-2"):  # one server per host, at the port its instance publishes now
        config = _sh(inventory, "cat /etc/haproxy/haproxy.cfg", edge)[edge]
        web = config[config.index("\nbackend be_web\n") :].split("\n\nbackend ")[0]
        servers = [line.split()[1] for line in web.splitlines() if line.strip().startswith("server ")]
        published = _sh(inventory, "docker port $(docker ps -qf label=pushorch.service=web) 8080/tcp")
        expected = sorted(f"{h}:{p.split()[0].rpartition(':')[2]}" for h, p in published.items())
        assert sorted(servers) == expected, (edge, web, published)
        live = _sh(inventory, "echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock", edge)[edge]
        assert sorted(line.split(",")[1] for line in live.splitlines() if line.startswith("be_web,lab-")) == expected
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0 and [c for c in changes if c.get("status") == "changed"] == [], changes
    (status, changes, _), failed, answers = _through_ingress(
        inventory, lambda: _apply(run_cli, inventory, "-e", "v=broken", playbook)
    )
    assert status == 6 and failed == [] and set(answers) == {"v2"}, (status, failed, answers)
    done, failed, _ = _through_ingress(
        inventory, lambda: run_cli("restart", "-i", str(inventory), "-e", "v=v2", playbook, "web")
    )
    assert done.status == 0 and failed == [], (done.out + done.err, failed)
    done, failed, answers = _through_ingress(
        inventory, lambda: run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, "web")
    )
    assert done.status == 0 and failed == [], (done.out + done.err, failed)
    assert _running(inventory, "web") == {f"lab-{i}": ["v1"] for i in (1, 2, 3)}
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v1", playbook)
    assert status == 0 and [c for c in changes if c.get("status") == "changed"] == [], changes


def test_prune_takes_a_removed_service_out_of_every_ingress_before_its_containers_go(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """`--prune` of a routed service the playbook no longer declares: its route leaves both ingress
    hosts (a request for it gets the 404 of no route, not a 5xx), its containers go, and `site`'s
    requests meanwhile all succeed. Another playbook's route (`keep`) stays."""
    _, inventory = edge_lab
    other = tmp_path / "other.yml"
    other.write_text(
        "- hosts: docker\n  services:\n    - name: keep\n"
        '      image: "{{ lab_registry }}/pushorch/demo-app:v1"\n      ports: ["18431:8080"]\n'
        "      ingress: {hosts: [keep.example.com]}\n- hosts: edge\n  ingress: {http_port: 80}\n"
    )
    assert _apply(run_cli, inventory, str(other))[0] == 0
    playbook = Path(bench_playbook(tmp_path, order="start-first"))
    # Its own service name: the module's earlier playbooks own `web` (a name belongs to one playbook).
    web_only = playbook.read_text().replace("name: web", "name: site").replace("app.example.com", "site.example.com")
    extra = (
        "    - name: api\n"
        '      image: "{{ lab_registry }}/pushorch/demo-app:v2"\n'
        '      ports: ["18430:8080"]\n'
        "      health: {http: {path: /health, port: 8080}, interval: 200ms, timeout: 1s}\n"
        "      ingress: {hosts: [api.example.com]}\n"
    )
    playbook.write_text(web_only.replace("- hosts: edge\n", extra + "- hosts: edge\n"))
    first = run_cli("apply", "-i", str(inventory), str(playbook))
    assert first.status == 0, first.out + first.err
    address = edge_address(inventory)
    playbook.write_text(web_only)
    with Client(address, hostname="api.example.com") as api, Client(address, hostname="site.example.com") as site:
        status, changes, _ = _apply(run_cli, inventory, "--prune", str(playbook))
    assert status == 0, changes
    assert site.failures == [] and api.failures == [], (site.failures, api.failures)
    assert site.answers["v1"] > 0, site.answers
    assert api.answers["no service here"] > 0 and api.answers["v2"] > 0, api.answers
    assert _running(inventory, "api") == {f"lab-{i}": [] for i in (1, 2, 3)}
    for edge in ("edge-1", "edge-2"):
        files = _sh(inventory, "ls /etc/haproxy/pushorch.d /etc/haproxy/certs", edge)[edge].split()
        assert not [f for f in files if f.startswith("api") or "-api." in f] and "site.backend" in files, files
        assert "keep.backend" in files, files  # another playbook's route: not this one's to prune
    status, changes, _ = _apply(run_cli, inventory, "--prune", str(playbook))
    assert status == 0 and [c for c in changes if c.get("status") == "changed"] == [], changes
