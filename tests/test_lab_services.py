"""Services as real applications need them, on the lab, with playbooks/shop.yml: an app and its
"database" on a private network (reached by alias), run options, a migration job, config changes
rolled out under the gates (a bad one reverted on the first host), hooks and depends_on order."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.conftest import ROOT
from tests.harness.sampling import Sampler
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _hosts, _sh
from tests.test_lab_rollout import _running

pytestmark = pytest.mark.lab

SHOP = str(ROOT / "playbooks" / "shop.yml")
PORT = 8123


def _addresses(inventory: Path) -> dict[str, str]:
    return {s.name: s.address for s in _hosts(inventory) if s.name in DOCKER_HOSTS}


def _get(address: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}:{PORT}{path}", timeout=1) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def _serving(addresses: dict[str, str]) -> int:
    """How many hosts serve /health right now."""
    return sum(_get(a, "/health")[0] == 200 for a in addresses.values())


def _container(lab: Lab, host: str, service: str) -> str:
    out = subprocess.run(
        ["docker", "exec", lab.container(host), "docker", "ps", "-q", "--filter", f"label=pushorch.service={service}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(out) == 1, out
    return out[0]


def _inside(lab: Lab, host: str, *argv: str) -> str:
    done = subprocess.run(["docker", "exec", lab.container(host), *argv], capture_output=True, text=True)
    return done.stdout + done.stderr


def test_the_shop_example_networks_options_jobs_config_hooks_and_order(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    addresses = _addresses(inventory)
    hook_log = tmp_path / "post_deploy.env"
    logged = ("-e", f"shop_hook_log={hook_log}")
    planned = run_cli("plan", "-i", str(inventory), *logged, SHOP)
    assert "after: shop-db" in planned.out and "job migrate on lab-1 (before batch 1)" in planned.out, planned.out
    status, changes, summary = _apply(run_cli, inventory, *logged, SHOP)
    assert status == 0, json.dumps(summary.get("failed"))
    batches = [c["message"] for c in changes if c["status"] == "batch"]
    assert batches[0].startswith("shop-db: batch 1") and any(b.startswith("shop: batch 1") for b in batches)
    assert batches.index(next(b for b in batches if b.startswith("shop:"))) > 0  # the database first
    assert _running(inventory, "shop") == {h: ["v1"] for h in DOCKER_HOSTS}
    # The network: the app reaches the database by its alias, from inside the app's container.
    app = _container(lab, "lab-2", "shop")
    assert _inside(lab, "lab-2", "docker", "exec", app, "wget", "-q", "-O-", "http://db:8080/version") == "v1\n"
    # Run options, as Docker holds them.
    inspect = json.loads(_inside(lab, "lab-2", "docker", "inspect", app))[0]["HostConfig"]
    assert inspect["CapAdd"] == ["CAP_NET_BIND_SERVICE"] or inspect["CapAdd"] == ["NET_BIND_SERVICE"]
    assert inspect["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert inspect["ExtraHosts"] == ["legacy.internal:10.9.9.9"]
    assert inspect["ReadonlyRootfs"] is True and "/tmp/www" in inspect["Tmpfs"] and inspect["Init"] is True
    # The migration ran once, on the first host, before the app started there: the app serves its marker.
    assert _get(addresses["lab-1"], "/migrated") == (200, "migrated-v1\n")
    env = dict(line.split("=", 1) for line in hook_log.read_text().splitlines())
    assert env["PUSHORCH_SERVICE"] == "shop" and env["PUSHORCH_VERSION"] == "v1" and env["PUSHORCH_RESULT"] == "done"

    # A release: the job runs again for the new image, and the new version reads what it wrote.
    status, changes, _ = _apply(run_cli, inventory, *logged, "-e", "shop_version=v2", SHOP)
    assert status == 0, changes
    assert any("shop: job migrate: schema at v2" in c["message"] for c in changes)
    assert _get(addresses["lab-1"], "/migrated") == (200, "migrated-v2\n")
    env = dict(line.split("=", 1) for line in hook_log.read_text().splitlines())
    assert (env["PUSHORCH_FROM_VERSION"], env["PUSHORCH_VERSION"]) == ("v1", "v2")
    # Nothing changed: the job does not run again.
    status, changes, _ = _apply(run_cli, inventory, *logged, "-e", "shop_version=v2", SHOP)
    assert status == 0 and not any("job migrate" in c["message"] for c in changes), changes

    # A good config change rolls out host by host: at least n-1 hosts serve all along.
    with Sampler(lambda: _serving(addresses), 0.1) as serving:
        status, changes, _ = _apply(run_cli, inventory, "-e", "shop_version=v2", "-e", "shop_revision=2", SHOP)
    assert status == 0, changes
    assert any("config changed (/etc/shop/app.conf)" in json.dumps(c) for c in changes)
    assert serving.samples and min(serving.samples) >= len(DOCKER_HOSTS) - 1, serving.samples
    # A bad one fails the first host's gate, goes back there (old container, old file) and reaches no other.
    status, changes, summary = _apply(run_cli, inventory, "-e", "shop_version=v2", "-e", "shop_mode=bad", SHOP)
    assert status == 6, changes
    assert list(summary["failed"]) == ["lab-1"] and "gate failed" in summary["failed"]["lab-1"]
    conf = _sh(inventory, "cat /etc/shop/app.conf")
    assert all(text.startswith("mode=good\n# revision 2") for text in conf.values()), conf
    assert all(_get(a, "/health")[0] == 200 for a in addresses.values())

    # A failing pre_deploy hook: nothing is replaced anywhere.
    failing = json.dumps({"shop_pre_deploy": "exit 3", "shop_version": "v1"})
    result = run_cli("apply", "-i", str(inventory), "-e", failing, SHOP)
    assert result.status == 5, result.out + result.err
    assert "the pre_deploy hook exited 3: nothing was replaced" in result.out
    assert _running(inventory, "shop") == {h: ["v2"] for h in DOCKER_HOSTS}


def test_an_image_built_from_a_context_ships_once_and_again_only_when_the_context_changes(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    port = json.loads((lab.dir / "lab.json").read_text())["registry_port"]
    context = tmp_path / "motd"
    context.mkdir()
    # FROM an image the controller has, COPY only: no RUN step needs a network on these machines.
    # Two stages: the last is what `docker build` makes; `build.target` names the other.
    (context / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE} AS loud\nCOPY loud.txt /www/motd.txt\nFROM ${BASE} AS plain\nCOPY motd.txt /www/motd.txt\n"
    )
    (context / "motd.txt").write_text("first\n")
    (context / "loud.txt").write_text("LOUD\n")
    service = {
        "name": "motd",
        "image": "lab/motd",
        "source": "ship",
        "build": {"context": "motd", "args": {"BASE": f"127.0.0.1:{port}/pushorch/demo-app:v1"}},
        "ports": [{"host": 18401, "container": 8080}],
        "stop_timeout": "2s",
        "health": {"http": {"path": "/health", "port": 8080}, "interval": "200ms"},
        "update": {"parallelism": 1, "min_healthy_time": "1s", "healthy_deadline": "20s"},
    }
    playbook = tmp_path / "motd.yml"
    playbook.write_text(json.dumps([{"hosts": "lab-1", "services": [service]}]))
    addresses = _addresses(inventory)

    def motd() -> str:
        with urllib.request.urlopen(f"http://{addresses['lab-1']}:18401/motd.txt", timeout=2) as reply:
            return reply.read().decode()

    status, changes, _ = _apply(run_cli, inventory, str(playbook))
    assert status == 0, changes
    assert any(c["message"].startswith("built lab/motd:ctx-") for c in changes) and motd() == "first\n"
    status, changes, _ = _apply(run_cli, inventory, str(playbook))
    assert status == 0 and changes == [], changes  # nothing built, shipped or replaced
    (context / "motd.txt").write_text("second\n")
    status, changes, _ = _apply(run_cli, inventory, str(playbook))
    assert status == 0, changes
    assert any(c["message"].startswith("built lab/motd:ctx-") for c in changes) and motd() == "second\n"
    service["build"]["target"] = "loud"  # type: ignore[index]  # another stage is another image
    playbook.write_text(json.dumps([{"hosts": "lab-1", "services": [service]}]))
    status, changes, _ = _apply(run_cli, inventory, str(playbook))
    assert status == 0, changes
    assert any(c["message"].startswith("built lab/motd:ctx-") for c in changes) and motd() == "LOUD\n"
