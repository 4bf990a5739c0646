"""The failover witness fails closed: when no Consul agent can say whether an unreachable host's
instance passes, the answer is "unknown" and nothing moves (agents served by the fake transport)."""

from __future__ import annotations

import asyncio

from pushorch.connection import ConnectionSettings
from pushorch.execute.failover import ConsulView, passing_in_consul
from pushorch.observed import ObservedHost
from pushorch.spec import Failover, Play, Service, Spec
from pushorch.spec import HostSpec as HS
from pushorch.transport.fake import FakeTransport, Script

PASSING_W3 = '[{"Service": {"ID": "web-w3"}}]'


def _spec() -> Spec:
    service = Service(name="web", image="reg/web:1", replicas=2, failover=Failover(after=60), consul={})
    play = Play(hosts="web", services=[service])
    return Spec(("p.yml",), {h: HS(h, {}, (play,), {}) for h in ("w1", "w2", "w3")})


def _view(scripts: dict[str, Script], agents: bool = True) -> tuple[ConsulView, dict[str, FakeTransport]]:
    transports = {h: FakeTransport(ConnectionSettings(h, h), s) for h, s in scripts.items()}
    observed = {h: ObservedHost(name=h, consul_agent=agents, consul_binary=True) for h in scripts}
    return asyncio.run(passing_in_consul(_spec(), observed, transports, {"w3"})), transports


def test_the_next_agent_is_asked_when_the_first_cannot_answer() -> None:
    view, transports = _view({"w1": Script().serve("health", 500), "w2": Script().serve("health", 200, PASSING_W3)})
    assert view == ConsulView(passing=frozenset({("web", "w3")}))
    assert transports["w1"].calls == ["http GET /v1/health/service/web?passing HTTP/1.1"]


def test_no_agent_answering_is_unknown_not_failing() -> None:
    for failure in (Script().serve("health", 500), Script().serve("health", 403, "ACL not found"), Script()):
        view, _ = _view({"w1": failure, "w2": Script().serve("health", 503)})
        assert view == ConsulView(unknown=frozenset({("web", "w3")})), failure


def test_an_agent_that_answers_without_the_instance_lets_it_move() -> None:
    view, _ = _view({"w1": Script().serve("health", 200, "[]"), "w2": Script().serve("health", 200, "[]")})
    assert view == ConsulView()


def test_consul_installed_but_no_agent_listening_is_unknown() -> None:
    view, _ = _view({"w1": Script(), "w2": Script()}, agents=False)
    assert view == ConsulView(unknown=frozenset({("web", "w3")}))
