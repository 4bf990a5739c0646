"""Promises on the paths nobody walks, tried on the lab as an operator would: values typed with -e,
credentials on the command line, a job past its deadline, a limited run, a config file put back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from pushorch.lab.faults import paused, start_consul, stop_consul
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _sh
from tests.test_lab_faults import _reconcile
from tests.test_lab_rollout import _playbook, _running

pytestmark = pytest.mark.lab


def _with(path: str, **service: object) -> str:
    plays = json.loads(Path(path).read_text())
    plays[0]["services"][0].update(service)
    Path(path).write_text(json.dumps(plays))
    return path


def test_a_job_past_its_deadline_is_stopped_and_removed_on_the_host(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _with(
        _playbook(tmp_path, "late-job", 18201),
        jobs=[{"name": "slow", "command": ["sh", "-c", "echo started; exec sleep 300"], "timeout": "3s"}],
    )
    # -e values are strings, as in Ansible: a timeout typed on the command line bounds commands.
    status, changes, summary = _apply(run_cli, inventory, "-e", "pushorch_command_timeout=120", playbook)
    assert status == 5, (changes, summary)
    assert "job slow on lab-1 exited 137 (out of time after 3s: stopped and removed)" in json.dumps(summary), summary
    # Nothing replaced, and no container of the job is left running its command.
    assert _running(inventory, "late-job") == {h: [] for h in DOCKER_HOSTS}
    left = _sh(inventory, "docker ps -a --filter label=pushorch.job=late-job --format '{{.Names}} {{.State}}'")
    assert left == {h: "" for h in DOCKER_HOSTS}, left
    assert _sh(inventory, "ps -eo args | grep -c '^sleep 300' || true", "lab-1") == {"lab-1": "0\n"}
    # The next run with a job that fits converges.
    _with(playbook, jobs=[{"name": "slow", "command": ["sh", "-c", "echo quick"], "timeout": "30s"}])
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _running(inventory, "late-job") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_credentials_given_with_e_reach_no_host_record_process_list_or_json(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    token, become_pw, api_token = "tok-3c0ffee-lab-21", "bpw-9d1e-lab-21", "api-77ab-lab-21"
    playbook = _playbook(tmp_path, "cred-a", 18202, min_healthy_time="2s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    seen: list[str] = []
    stop = threading.Event()

    def sample() -> None:  # every host's process list, as often as SSH allows, while the run lasts
        while not stop.is_set():
            seen.extend(_sh(inventory, "ps -eo args").values())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run_cli(
            "apply", "-i", str(inventory), "--json", "-e", "v=v2",
            "-e", f"consul_http_token={token} ansible_become_password={become_pw}",
            "-e", json.dumps({"deploy_api_token": api_token}), playbook,
        )  # fmt: skip
    finally:
        stop.set()
        sampler.join()
    assert result.status == 0, result.out + result.err
    assert _running(inventory, "cred-a") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert len(seen) >= 3 and any("pushorch-lock" in s or "docker" in s for s in seen)
    records = _sh(
        inventory, "cat /var/lib/pushorch/* /var/lib/pushorch/*/* 2>/dev/null; cat /etc/pushorch/env/* 2>/dev/null"
    )
    history = _sh(inventory, "cat /var/lib/pushorch/history.jsonl")
    assert all("consul_http_token=********" in text for text in history.values()), history
    for secret in (token, become_pw, api_token):
        assert not any(secret in text for text in records.values()), secret
        assert not any(secret in text for text in seen), secret
        assert secret not in result.out and secret not in result.err


def test_a_limited_run_never_starts_more_than_replicas(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _with(_playbook(tmp_path, "lim-a", 18203), replicas=2)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    placed = sorted(h for h, versions in _running(inventory, "lim-a").items() if versions)
    assert len(placed) == 2
    outside = placed[-1]
    planned = run_cli("plan", "-i", str(inventory), "-l", f"all:!{outside}", "-e", "v=v2", playbook)
    assert planned.status == 0, planned.err
    assert f"{outside}: lim-a: outside --limit, counted as running it" in planned.out, planned.out
    status, changes, _ = _apply(run_cli, inventory, "-l", f"all:!{outside}", "-e", "v=v2", playbook)
    assert status == 0, changes
    # The in-scope instance moved to v2; the one outside the limit was left alone; still two in all.
    running = _running(inventory, "lim-a")
    assert {h: v for h, v in running.items() if v} == {placed[0]: ["v2"], outside: ["v1"]}, running
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    assert {h: v for h, v in _running(inventory, "lim-a").items() if v} == {h: ["v2"] for h in placed}


def _config_playbook(tmp_path: Path, service: str, port: int) -> str:
    """The demo app with a config file under its bind mount: the file rolls out with the release."""
    path = _with(_playbook(tmp_path, service, port), volumes=[f"/etc/{service}:/etc/{service}:ro"])
    plays = json.loads(Path(path).read_text())
    plays[0]["vars"]["conf"] = "one"
    plays[0]["tasks"] = [{"name": "conf", "copy": {"dest": f"/etc/{service}/app.conf", "content": "{{ conf }}\n"}}]
    Path(path).write_text(json.dumps(plays))
    return path


def test_a_reverted_config_file_gets_its_exact_bytes_mode_and_owner_back(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _config_playbook(tmp_path, "cfgrev", 18204)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    conf = "/etc/cfgrev/app.conf"
    # An operator's file: binary, not valid UTF-8, mode 0640, owned by nobody.
    _sh(
        inventory,
        f"printf '\\377\\000\\376bin\\n\\200' > {conf} && chmod 0640 {conf} && chown 65534:65534 {conf}",
        "lab-1",
    )
    before = _sh(inventory, f"sha256sum < {conf}; stat -c '%a %u %g' {conf}", "lab-1")["lab-1"]
    status, _, summary = _apply(run_cli, inventory, "-e", "v=v2", "-e", "conf=two", "-e", "bad_host=lab-1", playbook)
    assert status == 6, summary
    assert _sh(inventory, f"sha256sum < {conf}; stat -c '%a %u %g' {conf}", "lab-1")["lab-1"] == before
    assert _running(inventory, "cfgrev") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_a_config_file_that_cannot_be_read_back_keeps_the_rollout_off_its_host(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _config_playbook(tmp_path, "cfgbad", 18205)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    conf = "/etc/cfgbad/app.conf"
    _sh(inventory, f"rm -f {conf} && mkdir {conf} && echo keep > {conf}/inside", "lab-2")
    status, _, summary = _apply(run_cli, inventory, "-e", "v=v2", "-e", "conf=two", playbook)
    assert status == 6, summary
    assert "not started" in summary["failed"]["lab-2"] and conf in summary["failed"]["lab-2"], summary
    # lab-2 was not touched: the old container serves, the directory and what it holds are still there.
    assert _running(inventory, "cfgbad")["lab-2"] == ["v1"]
    assert _sh(inventory, f"cat {conf}/inside", "lab-2") == {"lab-2": "keep\n"}
    assert {h: v for h, v in _running(inventory, "cfgbad").items()} == {h: ["v1"] for h in DOCKER_HOSTS}


def test_rollback_puts_back_the_kept_containers_config_and_a_hold_keeps_reconcile_off(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 7: a bad deploy that changed only a config file is rolled back to the old file (not
    to the old image with the playbook's file), a cron reconcile with the unchanged playbook keeps it
    (`--hold`), a second rollback does not return to the bad version, and a new version ends the hold."""
    _, inventory = lab_inventory
    playbook = _config_playbook(tmp_path, "cfgrb", 18230)
    conf = "cat /etc/cfgrb/app.conf"
    assert _apply(run_cli, inventory, playbook)[0] == 0
    bad = ("-e", "conf=two")  # same image and version label: only the file changes
    assert _apply(run_cli, inventory, *bad, playbook)[0] == 0
    assert _sh(inventory, conf) == {h: "two\n" for h in DOCKER_HOSTS}
    back = run_cli("rollback", "-i", str(inventory), *bad, "--hold", "--json", playbook, "cfgrb")
    assert back.status == 0, back.out + back.err
    assert _sh(inventory, conf) == {h: "one\n" for h in DOCKER_HOSTS}  # the file the kept container had
    assert _running(inventory, "cfgrb") == {h: ["v1"] for h in DOCKER_HOSTS}
    kept_one = _sh(inventory, "docker ps --filter label=pushorch.service=cfgrb --format '{{.Names}}'")
    # cron's reconcile with the playbook unchanged: held, nothing redeployed, the file stays.
    quiet = _reconcile(run_cli, inventory, *bad, "--detailed-exitcode", playbook)
    assert quiet.status == 0, quiet.out + quiet.err
    assert _sh(inventory, conf) == {h: "one\n" for h in DOCKER_HOSTS}
    assert _sh(inventory, "docker ps --filter label=pushorch.service=cfgrb --format '{{.Names}}'") == kept_one
    shown = run_cli("plan", "-i", str(inventory), *bad, playbook)
    assert "held on" in shown.out + shown.err and "rollback --release" in shown.out + shown.err
    rows = json.loads(run_cli("status", "-i", str(inventory), *bad, "--json", playbook).out)["services"]
    assert {r["drift"].split(" on ")[0] for r in rows if r["service"] == "cfgrb"} == {"held"}
    # Nothing older than the good version is kept: a second rollback refuses, never back to the bad one.
    again = run_cli("rollback", "-i", str(inventory), *bad, playbook, "cfgrb")
    assert again.status == 5 and "nothing to roll back to" in again.err, again.out + again.err
    assert _sh(inventory, conf) == {h: "one\n" for h in DOCKER_HOSTS}
    # A new version of the playbook ends the hold.
    assert _apply(run_cli, inventory, "-e", "conf=three", playbook)[0] == 0
    assert _sh(inventory, conf) == {h: "three\n" for h in DOCKER_HOSTS}
    assert _sh(inventory, "ls /var/lib/pushorch/hold/ 2>/dev/null; true") == {h: "" for h in DOCKER_HOSTS}


def test_a_renamed_service_runs_before_the_old_name_is_pruned(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 8: `web` renamed `frontend` (same host port) with --prune removed every `web` first
    and started every `frontend` at once, with nothing to go back to. Now each frontend start takes over
    from web on its host (rolling, gated, web started again if it fails) and web goes after."""
    _, inventory = lab_inventory
    old = _playbook(tmp_path, "rn-web", 18231)
    assert _apply(run_cli, inventory, old)[0] == 0
    renamed = json.loads(Path(old).read_text())
    renamed[0]["services"][0]["name"] = "rn-front"
    playbook = tmp_path / "rn-web.yml"  # the same playbook file: its service renamed
    playbook.write_text(json.dumps(renamed))
    # A broken frontend on lab-2: the rollout stops there, lab-2 gets web back, nothing is pruned.
    status, changes, _ = _apply(run_cli, inventory, "--prune", "-e", "bad_host=lab-2", str(playbook))
    assert status == 6, changes
    assert _running(inventory, "rn-web") == {h: ["v1"] for h in DOCKER_HOSTS}  # reverted, nothing removed
    assert {h for h, v in _running(inventory, "rn-front").items() if v} == set()
    status, changes, _ = _apply(run_cli, inventory, "--prune", "-e", "v=v2", str(playbook))
    assert status == 0, changes
    assert _running(inventory, "rn-front") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert _sh(inventory, "docker ps -aq --filter label=pushorch.service=rn-web") == {h: "" for h in DOCKER_HOSTS}
    order = [(c["host"], c["action"]["action"]) for c in changes if c["status"] == "changed" and c["action"]]
    starts = [i for i, (_, kind) in enumerate(order) if kind == "ReplaceContainer"]
    removals = [i for i, (_, kind) in enumerate(order) if kind == "RemoveContainer"]
    assert len(starts) == 3 and len(removals) == 3 and max(starts) < min(removals), order
    batches = [c["message"] for c in changes if c["status"] == "batch"]
    assert len(batches) == 3, batches  # one host at a time (parallelism 1), not all at once


def test_owners_are_playbooks_not_basenames_and_a_moved_service_is_adopted(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 2: /a/site.yml and /b/site.yml were one owner (a --prune of one removed the
    other's containers), and a service moved unchanged to another playbook kept its old owner (the
    old playbook's --prune deleted the live instance)."""
    _, inventory = lab_inventory

    def placed(directory: str, name: str, service: str, port: int) -> str:
        (tmp_path / directory).mkdir(exist_ok=True)
        path = Path(_playbook(tmp_path / directory, service, port))
        return str(path.rename(tmp_path / directory / name))

    a = placed("a", "site.yml", "own-a", 18232)
    b = placed("b", "site.yml", "own-b", 18233)
    assert _apply(run_cli, inventory, a)[0] == 0 and _apply(run_cli, inventory, b)[0] == 0
    status, changes, _ = _apply(run_cli, inventory, "--prune", a)
    assert status == 0 and not [c for c in changes if c["status"] == "changed"], changes
    assert _running(inventory, "own-b") == {h: ["v1"] for h in DOCKER_HOSTS}  # b/site.yml's, untouched
    # own-m moves, unchanged, from m1.yml to m2.yml; m1.yml keeps another service.
    m1 = placed("m", "m1.yml", "own-m", 18234)
    assert _apply(run_cli, inventory, m1)[0] == 0
    m2 = str(Path(m1).rename(tmp_path / "m" / "m2.yml"))
    placed("m", "m1.yml", "own-x", 18235)
    status, changes, _ = _apply(run_cli, inventory, m2)
    assert status == 0 and {c["action"]["action"] for c in changes if c["status"] == "changed"} == {"AdoptService"}
    assert _running(inventory, "own-m") == {h: ["v1"] for h in DOCKER_HOSTS}  # the same containers: never recreated
    status, changes, _ = _apply(run_cli, inventory, "--prune", m1)
    assert status == 0, changes
    assert _running(inventory, "own-m") == {h: ["v1"] for h in DOCKER_HOSTS}  # m2.yml's now: not pruned
    assert _running(inventory, "own-x") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_a_service_another_playbook_still_declares_is_refused_not_taken(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 1: cache.yml runs `own-d`; app.yml, applied on its own, declares `own-d` too. It
    took cache.yml's containers for its own (replaced them with its version, adopted them). Now it is
    refused (exit 3, both places named) and touches nothing; once cache.yml no longer declares the
    name, the same apply adopts the service (it moved)."""
    _, inventory = lab_inventory
    cache = Path(_playbook(tmp_path, "own-d", 18236)).rename(tmp_path / "cache.yml")
    app = Path(
        _with(_playbook(tmp_path, "own-d", 18236, parallelism=3), image="{{ lab_registry }}/pushorch/demo-app:v2")
    )
    app = app.rename(tmp_path / "app.yml")
    assert _apply(run_cli, inventory, str(cache))[0] == 0
    for command in ("apply", "plan"):
        result = run_cli(command, "-i", str(inventory), str(app))
        assert result.status == 3, result.out + result.err
        assert f"{app}:" in result.err and f"also declared in {cache}:" in result.err, result.err
    assert _running(inventory, "own-d") == {h: ["v1"] for h in DOCKER_HOSTS}  # cache.yml's, untouched
    owners = _sh(inventory, "cat /var/lib/pushorch/owners/own-d 2>/dev/null; true")
    assert not any("app.yml" in text for text in owners.values()), owners
    cache.write_text(json.dumps([{"name": "emptied", "hosts": "docker", "services": []}]))
    status, changes, _ = _apply(run_cli, inventory, str(app))
    assert status == 0, changes
    assert {c["action"]["action"] for c in changes if c["status"] == "changed"} >= {"AdoptService"}
    assert _running(inventory, "own-d") == {h: ["v2"] for h in DOCKER_HOSTS}


def test_failover_waits_when_no_consul_agent_can_witness(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    playbook = _with(_playbook(tmp_path, "wit-a", 18206), replicas=2, failover={"after": "3s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = sorted(h for h, versions in _running(inventory, "wit-a").items() if versions)
    victim = next(h for h in placed if h != "lab-1")  # lab-1 keeps the fleet record
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    witnesses = [h for h in DOCKER_HOSTS if h != victim]
    # Consul degraded: the agents of every host the controller can reach are gone (the binary stays).
    stop_consul(lab, witnesses)
    paused(lab, victim)
    try:
        assert _reconcile(run_cli, inventory, "-T", "2", playbook).status == 4  # the clock starts
        time.sleep(4)
        held = _reconcile(run_cli, inventory, "-T", "2", playbook)
        assert held.status == 4, held.out + held.err
        assert f"{victim}: wit-a: unreachable for" in held.err and "witness unavailable" in held.err, held.err
        assert _running(inventory, "wit-a", f"docker:!{victim}")[spare] == []  # not moved on "unknown"
    finally:
        paused(lab, victim, False)
        # Started from outside as the host's init would: a process left behind by an SSH session did
        # not survive it, and every later test that asked lab-3's agent found nobody (seen in CI).
        start_consul(lab, witnesses)
    assert _reconcile(run_cli, inventory, playbook).status == 0
    assert sorted(h for h, v in _running(inventory, "wit-a").items() if v) == placed


def test_failover_memory_needs_proof_that_the_absence_went_on(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """A host recorded unreachable, back while only limited runs saw the fleet, then paused again: its
    stretch starts again, so the very next reconcile does not move its instance ("delayed, never hastened")."""
    lab, inventory = lab_inventory
    playbook = _with(_playbook(tmp_path, "mem-a", 18207), replicas=2, failover={"after": "5s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = sorted(h for h, versions in _running(inventory, "mem-a").items() if versions)
    victim = next(h for h in placed if h != "lab-1")  # lab-1 keeps the fleet record
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    paused(lab, victim)
    try:
        assert _reconcile(run_cli, inventory, "-T", "2", playbook).status == 4  # recorded unreachable
    finally:
        paused(lab, victim, False)
    time.sleep(6)  # back, but only seen by runs limited to the other hosts: the entry is kept, unconfirmed
    assert _reconcile(run_cli, inventory, "-l", f"all:!{victim}", playbook).status == 0
    record = json.loads(_sh(inventory, "cat /var/lib/pushorch/fleet.json", "lab-1")["lab-1"])
    assert victim in record["unreachable"], record
    paused(lab, victim)
    try:
        again = _reconcile(run_cli, inventory, "-T", "2", playbook)
        assert again.status == 4 and f"{victim}: mem-a: unreachable for 0s" in again.err, again.out + again.err
        assert "failover from" not in again.out
        assert _running(inventory, "mem-a", f"docker:!{victim}")[spare] == []
    finally:
        paused(lab, victim, False)
    assert _reconcile(run_cli, inventory, playbook).status == 0
    assert sorted(h for h, v in _running(inventory, "mem-a").items() if v) == placed


def _service_placed_on(host: str, prefix: str) -> str:
    """A service name whose two replicas rendezvous puts on `host` (among the lab's Docker hosts)."""
    from pushorch.planner.placement import place

    return next(f"{prefix}{i}" for i in range(100) if host in place(f"{prefix}{i}", DOCKER_HOSTS, 2))


def test_with_the_consul_lock_backend_every_controller_reads_one_fleet_record(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Two controllers (cron boxes) that ask different agents for the Consul lock share the fleet
    record through the KV store: the second one knows how long lab-2 has been away."""
    lab, inventory = lab_inventory
    name = _service_placed_on("lab-2", "kvmem-")
    playbook = _with(_playbook(tmp_path, name, 18208), replicas=2, failover={"after": "5s"})
    via = {h: ("-e", "pushorch_lock_backend=consul", "-e", f"pushorch_lock_host={h}") for h in DOCKER_HOSTS}
    assert _reconcile(run_cli, inventory, *via["lab-3"], playbook).status == 0
    placed = sorted(h for h, versions in _running(inventory, name).items() if versions)
    assert "lab-2" in placed
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    paused(lab, "lab-2")
    try:
        first = _reconcile(run_cli, inventory, "-T", "2", *via["lab-3"], playbook)  # controller A
        assert first.status == 4, first.err
        record = json.loads(_kv_record(inventory))  # in Consul's KV store, beside the lock
        assert "lab-2" in record["unreachable"], record
        time.sleep(6)
        moved = _reconcile(run_cli, inventory, "-T", "2", *via["lab-1"], playbook)  # controller B
        assert moved.status == 4 and "failover from lab-2" in moved.out, moved.out + moved.err
        assert _running(inventory, name, "docker:!lab-2")[spare] == ["v1"]
    finally:
        paused(lab, "lab-2", False)
    assert _reconcile(run_cli, inventory, *via["lab-1"], playbook).status == 0
    assert _running(inventory, name)["lab-2"] == []  # its stale instance went: never twice


def _kv_record(inventory: Path) -> str:
    from tests.test_lab_apply import _http_through_ssh

    status, body = _http_through_ssh(inventory, "lab-1", 8500, "/v1/kv/pushorch/fleet/fleet?raw")
    assert status == 200, body
    return body.decode()
