"""The ingress in the plan (pure): HAProxy installed and configured from placement on the edge hosts,
each rollout step of a routed service drained and readied there."""

from __future__ import annotations

import hashlib

from pushorch.actions import ConfigureIngress, InstallIngress
from pushorch.commands import haproxy
from pushorch.observed import ObservedFile, ObservedHost
from pushorch.planner.ingress import ingress_actions, routes
from pushorch.planner.plan import plan
from pushorch.spec import HostSpec, Play, Service, Spec

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


def _edge(content: str = "", running: bool = False, installed: bool = False) -> ObservedHost:
    files = {}
    if installed:
        files = {p: ObservedFile(p, True, "file") for p in (haproxy.BINARY, haproxy.SOCAT)}
    if content:
        digest = hashlib.sha256(content.encode()).hexdigest()
        files[haproxy.CONFIG] = ObservedFile(haproxy.CONFIG, True, "file", digest)
    return ObservedHost("e1", package_manager="apt-get", files=files, ingress_running=running)


def test_the_routes_are_the_placed_instances_at_their_published_host_port() -> None:
    [route] = routes(_spec(), {"web": ["w1", "w2"]})
    assert route.servers == (haproxy.Server("w1", "10.0.0.1", 18400), haproxy.Server("w2", "10.0.0.2", 18400))
    assert (route.hostnames, route.path, route.check) == (("app.example.com",), "/", "/health")
    config = haproxy.render([route], 8080, 1.0)
    assert "    balance hash req.cook(sid)\n    hash-type consistent\n" in config
    assert "    server w1 10.0.0.1:18400 check\n" in config and "    bind :8080\n" in config


def test_an_edge_host_gets_haproxy_installed_configured_and_then_nothing() -> None:
    spec, placement = _spec(), {"web": ["w1", "w2"]}
    fresh = ingress_actions(spec.hosts["e1"], _edge(), spec, placement)
    assert [type(a) for a in fresh] == [InstallIngress, ConfigureIngress]
    assert fresh[0].packages == ("haproxy", "socat")  # type: ignore[attr-defined]
    content = fresh[1].content  # type: ignore[attr-defined]
    assert ingress_actions(spec.hosts["e1"], _edge(content, running=True, installed=True), spec, placement) == []
    stopped = ingress_actions(spec.hosts["e1"], _edge(content, installed=True), spec, placement)
    assert [a.reason for a in stopped] == ["the proxy is not running"]
    moved = ingress_actions(spec.hosts["e1"], _edge(content, running=True, installed=True), spec, {"web": ["w1"]})
    assert [a.reason for a in moved] == ["its configuration differs"]


def test_each_rollout_step_of_a_routed_service_names_the_edges_to_drain_it_on() -> None:
    spec = _spec()
    observed = {h: ObservedHost(h, docker_installed=True, docker_running=True) for h in ("w1", "w2")}
    observed["e1"] = _edge()
    planned = plan(spec, observed)
    [rollout] = planned.rollouts
    assert [(a.host, a.edges) for batch in rollout.batches for a in batch] == [("w1", ("e1",)), ("w2", ("e1",))]


def test_show_stat_is_read_as_each_server_s_status() -> None:
    header = "# pxname,svname," + ",".join(f"f{i}" for i in range(2, 40))
    line = lambda px, sv, status: ",".join([px, sv, *["0"] * 15, status, *["0"] * 20])  # noqa: E731
    csv = "\n".join(
        [header, line("http", "FRONTEND", "OPEN"), line("be_web", "w1", "UP"), line("be_web", "w2", "DRAIN")]
    )
    assert haproxy.parse_stat(csv + "\n" + line("be_web", "BACKEND", "UP")) == {
        ("be_web", "w1"): "UP",
        ("be_web", "w2"): "DRAIN",
    }


def test_a_request_no_route_claims_gets_a_404_and_longer_prefixes_match_first() -> None:
    api = haproxy.Route("api", ("a.example.com",), "/api", "leastconn", "uri", "", ())
    web = haproxy.Route("web", ("a.example.com",), "/", "roundrobin", "uri", "", ())
    config = haproxy.render([web, api], 80, 1.0)
    assert config.index("use_backend be_api") < config.index("use_backend be_web")
    assert "    default_backend be_no_route\n" in config and "http-request return status 404" in config
