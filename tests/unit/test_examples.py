"""Every example playbook and inventory loads, and the reference playbook documents every schema key."""

from __future__ import annotations

import re

from pushorch.ansible.load_inventory import load_inventory
from pushorch.load.playbooks import load_spec
from pushorch.spec import schema_keys
from tests.conftest import ROOT

PLAYBOOKS = sorted(str(p) for p in (ROOT / "playbooks").glob("*.yml"))
INVENTORIES = sorted(str(p) for p in (ROOT / "inventory").iterdir() if p.is_file())


def test_every_inventory_loads() -> None:
    for source in INVENTORIES:
        inventory = load_inventory([source])
        assert inventory.hosts, source


def test_every_playbook_checks_against_the_example_inventory() -> None:
    _, spec = load_spec([str(ROOT / "inventory")], PLAYBOOKS)
    assert set(spec.hosts) == {"web-1", "web-2", "web-3"}
    for host in spec.hosts.values():
        assert len(host.plays) == len(PLAYBOOKS)


def test_seed_service_is_expressed() -> None:
    _, spec = load_spec([str(ROOT / "inventory")], [str(ROOT / "playbooks" / "seed-nginx.yml")])
    service = spec.hosts["web-1"].plays[0].services[0]
    assert service.replicas == 3
    assert service.image.endswith("/nginx-seed:1.14.2") and service.image_version == "1.14.2"
    assert [(p.host, p.container) for p in service.ports] == [(80, 80)]
    assert service.consul is not None
    assert (service.consul.name, service.consul.tags, service.consul.port) == ("nginx-service", ["web"], 80)
    assert service.health is not None and service.health.kind == "http"


def test_reference_documents_every_key() -> None:
    text = (ROOT / "playbooks" / "reference.yml").read_text()
    documented = set(re.findall(r"^\s*(?:- )?([a-z_]+):", text, re.M)) | set(re.findall(r"[{,]\s*([a-z_]+):", text))
    assert sorted(schema_keys() - documented) == []
