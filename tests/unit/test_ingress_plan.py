"""The ingress in the plan (pure): HAProxy installed and configured from placement on the edge hosts,
each rollout step of a routed service drained and readied there."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pushorch.actions import ConfigureIngress, IngressTarget, InstallIngress
from pushorch.commands import haproxy, haproxy_config
from pushorch.commands.haproxy import _assembled as haproxy_assembled
from pushorch.observed import ObservedContainer, ObservedFile, ObservedHost
from pushorch.planner.ingress import ingress_actions, routes
from pushorch.planner.plan import plan
from pushorch.spec import HostSpec, Play, Service, Spec, UpdatePolicy

WEB = Service.model_validate(
    {
        "name": "web",
        "image": "reg/web:1",
        "ports": ["18400:8080"],
        "health": {"http": {"path": "/health", "port": 8080}},
        "ingress": {"hosts": ["app.example.com"], "balance": "consistent", "hash_key": "cookie:sid"},
    }
)
APP = Play(hosts="web", services=[WEB])
EDGE = Play.model_validate({"hosts": "edge", "ingress": {"http_port": 8080}})


def _spec() -> Spec:
    hosts = {
        h: HostSpec(h, {"ansible_host": f"10.0.0.{i}"}, (APP,), {}, ("p.yml",)) for i, h in enumerate(("w1", "w2"), 1)
    }
    hosts["e1"] = HostSpec("e1", {}, (EDGE,), {}, ("p.yml",))
    return Spec(("p.yml",), hosts)


def _edge(fragments: tuple[tuple[str, str], ...] = (), running: bool = False, installed: bool = False) -> ObservedHost:
    files = {}
    if installed:
        files = {p: ObservedFile(p, True, "file") for p in (haproxy.BINARY, haproxy.SOCAT)}
    for name, content in fragments:  # as the probe reads them (stat and sha256sum of the directory)
        path = f"{haproxy.FRAGMENTS}/{name}"
        files[path] = ObservedFile(path, True, "file", hashlib.sha256(content.encode()).hexdigest())
    return ObservedHost("e1", package_manager="apt-get", files=files, ingress_running=running)


def test_the_routes_are_the_placed_instances_at_their_published_host_port() -> None:
    [route] = routes(_spec(), {"web": ["w1", "w2"]})
    assert route.servers == (haproxy.Server("w1", "10.0.0.1", 18400), haproxy.Server("w2", "10.0.0.2", 18400))
    assert (route.hostnames, route.path, route.check) == (("app.example.com",), "/", "/health")
    config = haproxy.render([route], 8080, 1.0)
    assert "    balance hash req.cook(sid)\n    hash-type consistent\n" in config
    assert "    server w1:18400 10.0.0.1:18400 check\n" in config and "    bind :8080\n" in config


def test_an_edge_host_gets_haproxy_installed_configured_and_then_nothing() -> None:
    spec, placement = _spec(), {"web": ["w1", "w2"]}
    fresh = ingress_actions(spec.hosts["e1"], _edge(), spec, placement)
    assert [type(a) for a in fresh] == [InstallIngress, ConfigureIngress]
    assert fresh[0].packages == ("haproxy", "socat")  # type: ignore[attr-defined]
    content = fresh[1].fragments  # type: ignore[attr-defined]
    assert [name for name, _ in content] == [
        "00-head.cfg",
        "r998-web.route",
        "web.backend",
        "web@w1.servers",
        "web@w2.servers",
        f"web.owner-{haproxy_config.owner_mark('p.yml')}",  # which playbook routes it (--prune)
    ]
    assert ingress_actions(spec.hosts["e1"], _edge(content, running=True, installed=True), spec, placement) == []
    stopped = ingress_actions(spec.hosts["e1"], _edge(content, installed=True), spec, placement)
    assert [a.reason for a in stopped] == ["the proxy is not running"]
    moved = ingress_actions(spec.hosts["e1"], _edge(content, running=True, installed=True), spec, {"web": ["w1"]})
    assert [a.reason for a in moved] == ["its configuration differs (web@w2.servers)"]  # w2's file goes
    # Another playbook's service's fragments on the host are no difference: they are left as they are.
    theirs = (*content, ("r998-api.route", "acl ..."), ("api.backend", "backend be_api"))
    assert ingress_actions(spec.hosts["e1"], _edge(theirs, running=True, installed=True), spec, placement) == []


def test_each_rollout_step_of_a_routed_service_names_the_edges_to_drain_it_on() -> None:
    spec = _spec()
    observed = {h: ObservedHost(h, docker_installed=True, docker_running=True) for h in ("w1", "w2")}
    observed["e1"] = _edge()
    planned = plan(spec, observed)
    [rollout] = planned.rollouts
    steps = [(a.host, a.ingress) for batch in rollout.batches for a in batch]
    assert steps == [
        ("w1", IngressTarget(("e1",), "10.0.0.1", 8080, "1000ms")),
        ("w2", IngressTarget(("e1",), "10.0.0.2", 8080, "1000ms")),
    ]


def test_show_stat_is_read_as_each_server_s_status() -> None:
    header = "# pxname,svname," + ",".join(f"f{i}" for i in range(2, 40))
    line = lambda px, sv, status: ",".join([px, sv, *["0"] * 15, status, *["0"] * 20])  # noqa: E731
    csv = "\n".join(
        [header, line("http", "FRONTEND", "OPEN"), line("be_web", "w1:80", "UP"), line("be_web", "w2:80", "DRAIN")]
    )
    ongoing = line("be_web", "w1:32768", "UP")  # a start-first step: the new server beside the old
    assert haproxy.parse_stat(csv + "\n" + ongoing + "\n" + line("be_web", "BACKEND", "UP")) == {
        ("be_web", "w1"): "UP+UP",
        ("be_web", "w2"): "DRAIN",
    }


def test_a_request_no_route_claims_gets_a_404_and_longer_prefixes_match_first() -> None:
    api = haproxy.Route("api", ("a.example.com",), "/api", "leastconn", "uri", "", ())
    web = haproxy.Route("web", ("a.example.com",), "/", "roundrobin", "uri", "", ())
    config = haproxy.render([web, api], 80, 1.0)
    assert config.index("use_backend be_api") < config.index("use_backend be_web")
    assert "    default_backend be_no_route\n" in config and "http-request return status 404" in config


def _pair(tmp_path: Path, name: str) -> None:
    """NAME.pem and NAME-key.pem beside the playbook: a pair that belongs together (the lab's maker)."""
    from pushorch.lab.tlsgen import ensure_certificates

    _, cert, key = ensure_certificates(tmp_path / name, [])
    (tmp_path / f"{name}.pem").write_bytes(cert.read_bytes())
    (tmp_path / f"{name}-key.pem").write_bytes(key.read_bytes())


def test_a_certificate_that_does_not_match_its_key_is_bad_input(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _pair(tmp_path, "one")
    _pair(tmp_path, "two")
    (tmp_path / "inv.ini").write_text("[web]\nw1\n[edge]\ne1\n")
    tls = "tls: {certificate: !secret_file one.pem, key: !secret_file %s-key.pem}"
    service = (
        "    - name: %s\n      image: 'a:1'\n      ports: ['%d:80']\n      ingress: {hosts: [%s.example.com], %s}\n"
    )
    (tmp_path / "p.yml").write_text(
        "- hosts: web\n  services:\n"
        + service % ("good", 8081, "good", tls % "one")
        + service % ("bad", 8082, "bad", tls % "two")
        + "- hosts: edge\n  ingress: {}\n"
    )
    result = run_cli("check", "-i", "inv.ini", "p.yml", cwd=tmp_path)
    assert result.status == 3, result.err
    assert result.err.splitlines()[0] == (
        "p.yml:10:43: [0].services[1].ingress.tls: tls: the certificate does not match its key"
    ), result.err
    assert "PRIVATE KEY" not in result.err + result.out


def test_tls_binds_https_with_each_certificate_and_redirects_http() -> None:
    web = haproxy.Route("web", ("a.example.com", "*.b.example.com"), "/", "roundrobin", "uri", "", (), tls="ab12")
    config = haproxy.render([web], 80, 1.0, 8443)
    assert "    bind :8443 ssl crt /etc/haproxy/certs/\n" in config
    assert "    acl host_web hdr(host),field(1,:),lower -m end .b.example.com\n" in config
    assert "    http-request redirect scheme https code 301 if !{ ssl_fc } host_web\n" in config
    assert "# certificate sha256 ab12" in config


def _start_first_spec() -> Spec:
    service = WEB.model_copy(update={"ports": WEB.ports, "update": UpdatePolicy(order="start-first")})
    play = Play(hosts="web", services=[service])
    hosts = {
        h: HostSpec(h, {"ansible_host": f"10.0.0.{i}"}, (play,), {}, ("p.yml",)) for i, h in enumerate(("w1", "w2"), 1)
    }
    hosts["e1"] = HostSpec("e1", {}, (EDGE,), {}, ("p.yml",))
    return Spec(("p.yml",), hosts)


def _running(name: str, port: int, state: str = "running") -> ObservedContainer:
    labels = {"pushorch.service": "web", "pushorch.spec-hash": name}
    return ObservedContainer(name, name, "reg/web:1", "sha", state, None, labels, {"8080/tcp": f"0.0.0.0:{port}"}, "")


def test_a_start_first_service_is_routed_at_the_ports_docker_chose_for_its_gated_instances() -> None:
    """Issue 24: a start-first instance's host port is Docker's choice: the server is the running
    instance's, as observed; a host with none yet has an empty server file (its step adds it)."""
    spec = _start_first_spec()
    w1 = ObservedHost(
        "w1", containers=(_running("web-a", 32768), _running("web-b", 32790)), ungated=frozenset({"web-b"})
    )
    w2 = ObservedHost("w2", containers=(_running("web-c", 32770, "exited"),))
    [route] = routes(spec, {"web": ["w1", "w2"]}, {"w1": w1, "w2": w2})
    assert route.servers == (haproxy.Server("w1", "10.0.0.1", 32768),)  # not the ungated one, not a stopped one
    parts = dict(haproxy_config.fragments([route], 80, 443, 1.0))
    assert parts["web@w1.servers"] == "    server w1:32768 10.0.0.1:32768 check\n" and parts["web@w2.servers"] == ""
    observed = {h: ObservedHost(h, docker_installed=True, docker_running=True) for h in ("w1", "w2")}
    observed["e1"] = _edge()


def test_the_assembled_configuration_is_what_render_says(tmp_path: Path) -> None:
    """The host's shell assembly and render() agree: head, routes, the 404, each backend then its hosts' servers."""
    import subprocess

    web = haproxy.Route(
        "web", ("a.example.com",), "/", "roundrobin", "uri", "/h", (haproxy.Server("w1", "10.0.0.1", 80),), ("w1", "w2")
    )
    api = haproxy.Route(
        "api", ("a.example.com",), "/api", "leastconn", "uri", "", (haproxy.Server("w2", "10.0.0.2", 81),), ("w2",)
    )
    for name, content in haproxy_config.fragments([web, api], 80, 443, 1.0).items():
        (tmp_path / name).write_text(content)
    subprocess.run(["sh", "-c", haproxy_assembled(str(tmp_path), str(tmp_path / "out.cfg"))], check=True)
    assert (tmp_path / "out.cfg").read_text() == haproxy.render([web, api], 80, 1.0)


def test_a_stop_first_route_names_the_running_instance_s_port_until_its_step_moves_it() -> None:
    """A service that changes from start-first to stop-first: the running instance still publishes the
    port Docker chose, so the route keeps that server (a reload before the rollout would have cut it)
    until the step routes the new one; a host this run cannot see keeps the fixed port's server."""
    spec = _spec()
    w1 = ObservedHost("w1", containers=(_running("web-a", 32768),))
    w2 = ObservedHost("w2", reachable=False)
    [route] = routes(spec, {"web": ["w1", "w2"]}, {"w1": w1, "w2": w2})
    assert route.servers == (haproxy.Server("w1", "10.0.0.1", 32768), haproxy.Server("w2", "10.0.0.2", 18400))


def test_prune_takes_out_the_routes_the_run_s_playbooks_made_and_no_longer_declare() -> None:
    """Issue 24: each routed service's fragments carry its owner's mark; `--prune` of that playbook
    removes the routes (and certificate) of a service it no longer declares, never another's."""
    spec, placement = _spec(), {"web": ["w1", "w2"]}
    [configure] = [a for a in ingress_actions(spec.hosts["e1"], _edge(installed=True), spec, placement)]
    content = configure.fragments  # type: ignore[attr-defined]
    assert ("web.owner-" + haproxy_config.owner_mark("p.yml"), "") in content
    mine = haproxy_config.owner_mark("p.yml")
    gone = (("r998-api.route", "acl"), ("api.backend", "backend"), (f"api.owner-{mine}", ""))
    theirs = (("r998-db.route", "acl"), (f"db.owner-{haproxy_config.owner_mark('other.yml')}", ""))
    seen = _edge((*content, *gone, *theirs), running=True, installed=True)
    assert ingress_actions(spec.hosts["e1"], seen, spec, placement) == []  # without --prune: left alone
    [pruning] = ingress_actions(spec.hosts["e1"], seen, spec, placement, None, ("p.yml",))
    assert pruning.pruned == ("api",) and pruning.services == ("web",)  # type: ignore[attr-defined]
    assert "api no longer declared (--prune)" in pruning.reason
    removed = haproxy.prepare(("web",), ("api",))[-1]
    assert "/etc/haproxy/pushorch.d.new/api.backend" in removed and "/etc/haproxy/certs/api.pem" in removed


SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
308             master          2 [failed: 0]   0d00h01m26s     2.6.12-1+deb12u4
# workers
1161            worker          0               0d00h00m22s     2.6.12-1+deb12u4
# old workers
1100            worker          1               0d00h01m02s     2.6.12-1+deb12u4
# programs
"""


def test_a_reload_waits_for_the_workers_that_ran_before_it_and_only_those(tmp_path: Path) -> None:
    """The workers read before a reload (HAProxy 2.6's `show proc`, as an edge host answered it) are the
    current ones, not the old workers still finishing (found by the --prune lab test: a reload returns
    at once, and a request reached an old worker after the pruned service's containers had gone)."""
    import subprocess

    (tmp_path / "proc").write_text(SHOW_PROC)
    script = f"socat() {{ cat {tmp_path / 'proc'}; }}; {haproxy._WORKERS}; echo $old"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1161"]
    assert haproxy._OLD_GONE in haproxy.assemble(False)[-1] and haproxy._OLD_GONE in haproxy.assemble(True)[-1]
