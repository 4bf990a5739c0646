"""Day-2 operations on the lab: logs, exec in a service's container, rolling restart, deploy history.
Assertions on what the hosts did and served, not on what was printed that they would do."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.conftest import ROOT
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _sh
from tests.test_lab_rollout import Sampler, _playbook, _running

pytestmark = pytest.mark.lab

TALK = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"


def _talker(tmp_path: Path) -> str:
    """A service that logs a line every 0.3 s (no ports, no health: it must keep running)."""
    play = {
        "name": "talker",
        "hosts": "docker",
        "vars": {"greeting": "hello"},
        "services": [
            {
                "name": "talk-a",
                "image": "{{ lab_registry }}/pushorch/demo-app:v1",
                "command": ["sh", "-c", TALK],
                "env": {"GREETING": "{{ greeting }} from {{ inventory_hostname }}"},
                "update": {"min_healthy_time": "1s"},
            }
        ],
    }
    path = tmp_path / "talker.yml"
    path.write_text(json.dumps([play]))
    return str(path)


def _remote_log_readers(inventory: Path) -> dict[str, str]:
    return _sh(inventory, "ps -eo args | grep -c '^docker logs' || true")


def test_logs_tail_grep_follow_and_ctrl_c_ends_every_remote_reader(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _talker(tmp_path)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    time.sleep(1)
    tail = run_cli("logs", "-i", str(inventory), "--tail", "2", playbook, "talk-a")
    assert tail.status == 0, tail.err
    lines = tail.out.splitlines()
    assert len(lines) == 6 and {line.split(" | ")[0].strip() for line in lines} == set(DOCKER_HOSTS)
    assert all(line.split(" | ")[1].startswith("tick ") for line in lines)
    grep = run_cli("logs", "-i", str(inventory), "--grep", r"^tick 3$", "--transport", "paramiko", playbook, "talk-a")
    assert grep.status == 0 and sorted(grep.out.splitlines()) == [f"{h} | tick 3" for h in DOCKER_HOSTS]
    follow = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",  # SIGABRT on a hang dumps every thread's stack into the failure
            "-m",
            "pushorch",
            "logs",
            "-i",
            str(inventory),
            "-f",
            "--tail",
            "0",
            "--grep",
            "MARK|tick",
            playbook,
            "talk-a",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Started as a shell without job control starts it (a script's `&`, cron, CI): SIGINT ignored.
        # Ctrl-C sent with `kill -INT` must still end it (it did not: the full suite ran in the background).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 20
        assert follow.stdout is not None
        while time.monotonic() < deadline and {line.split(" | ")[0].strip() for line in seen} != set(DOCKER_HOSTS):
            seen.append(follow.stdout.readline())
        # A line written after the command started arrives.
        _sh(
            inventory,
            "docker exec $(docker ps -q --filter label=pushorch.service=talk-a) sh -c 'echo MARK-7 > /proc/1/fd/1'",
            "lab-2",
        )
        while time.monotonic() < deadline and "lab-2 | MARK-7\n" not in seen:
            seen.append(follow.stdout.readline())
        assert "lab-2 | MARK-7\n" in seen
        assert all(n != "0\n" for n in _remote_log_readers(inventory).values())  # they do follow
    finally:
        follow.send_signal(signal.SIGINT)
        try:
            status = follow.wait(20)
        except subprocess.TimeoutExpired:
            follow.send_signal(signal.SIGABRT)
            status = follow.wait(10)
    assert status == 0, follow.stderr.read() if follow.stderr else ""
    time.sleep(1.5)  # each host's watcher notices within a second
    assert _remote_log_readers(inventory) == {h: "0\n" for h in DOCKER_HOSTS}  # Ctrl-C left none behind
    assert run_cli("logs", "-i", str(inventory), playbook, "no-such").status == 3


def test_exec_runs_in_the_service_container_on_each_host(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _talker(tmp_path)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    ids = {h: out.strip() for h, out in _sh(inventory, "docker ps -q --filter label=pushorch.service=talk-a").items()}
    done = run_cli(
        "exec",
        "-i",
        str(inventory),
        "--json",
        "--service",
        "talk-a",
        playbook,
        "--",
        "sh",
        "-c",
        "cat /etc/hostname; echo $GREETING",
    )
    assert done.status == 0, done.err
    results = {r["host"]: r["stdout"].split("\n") for r in map(json.loads, done.out.splitlines())}
    assert {h: (out[0], out[1]) for h, out in results.items()} == {h: (ids[h], f"hello from {h}") for h in DOCKER_HOSTS}
    assert run_cli("exec", "-i", str(inventory), "--service", "nope", playbook, "--", "true").status == 3


def test_restart_rolls_through_the_hosts_and_history_records_every_change(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "rs-a", 18130)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    started = "docker inspect --format '{{.State.StartedAt}}' $(docker ps -q --filter label=pushorch.service=rs-a)"
    before = _sh(inventory, started)
    with Sampler(inventory, "rs-a") as sampler:
        done = run_cli("restart", "-i", str(inventory), "-e", "v=v2", "--json", playbook, "rs-a")
    assert done.status == 0, done.out + done.err
    after = _sh(inventory, started)
    assert all(after[h] != before[h] for h in DOCKER_HOSTS)  # every container restarted ...
    assert _running(inventory, "rs-a") == {h: ["v2"] for h in DOCKER_HOSTS}  # ... the same version, nothing replaced
    assert min(sampler.healthy_counts()) >= 2  # one host at a time: n-1 of n served throughout
    assert run_cli("restart", "-i", str(inventory), playbook, "no-such").status == 3
    assert run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, "rs-a").status == 0
    shown = run_cli("history", "-i", str(inventory), "--json", "rs-a")
    assert shown.status == 0, shown.err
    rows = [json.loads(line) for line in shown.out.splitlines()]
    for host in DOCKER_HOSTS:
        mine = [(r["action"], r["from"], r["to"], r["result"]) for r in rows if r["host"] == host]
        assert mine == [
            ("start", "", "v1", "changed"),
            ("replace", "v1", "v2", "changed"),
            ("restart", "v2", "v2", "changed"),
            ("replace", "v2", "v1", "changed"),
        ], mine
    assert all(r["by"] and "pushorch rollback" in r["command"] for r in rows[-3:])
    last = run_cli("history", "-i", str(inventory), "-n", "2", "--json", "rs-a")
    assert [json.loads(line) for line in last.out.splitlines()] == rows[-2:]
    table = run_cli("history", "-i", str(inventory), "rs-a")
    assert table.status == 0 and table.out.split()[:4] == ["time", "host", "service", "action"]
    # Issue 26: a restart that restarts nothing (every host runs another version than the playbook's)
    # exited 0; it is exit 5 and its last line says why.
    nothing = run_cli("restart", "-i", str(inventory), "-e", "v=v3", playbook, "rs-a")
    assert nothing.status == 5, nothing.out + nothing.err
    assert nothing.err.splitlines()[-1].startswith("restart rs-a: nothing was done: lab-1: rs-a: runs another version")


def test_old_images_go_after_rollouts_and_prune_removes_exactly_what_dry_run_lists(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    play = {
        "name": "prune",
        "hosts": "docker",
        # keep_images 0: which of two images built in the same second is "newest" is Docker's coin toss.
        "vars": {"v": "v1", "keep": 1, "keep_images": 0},
        "services": [
            {
                "name": "pr-a",
                "image": "{{ lab_registry }}/pushorch/demo-app-hc:{{ v }}",
                "update": {"min_healthy_time": "1s", "keep": "{{ keep }}", "keep_images": "{{ keep_images }}"},
            }
        ],
    }
    playbook = tmp_path / "prune.yml"
    playbook.write_text(json.dumps([play]))
    tags = "docker images --format '{{.Tag}}' $(docker ps -q --filter label=pushorch.service=pr-a --format '{{.Image}}' | cut -d: -f1-2) | sort | tr '\\n' ' '"
    for version in ("v1", "v2", "broken", "v1"):  # three rollouts after the first start
        assert _apply(run_cli, inventory, "-e", f"v={version}", str(playbook))[0] == 0
    # v1 runs, broken is the kept container's: v2 (and v1 while it was unused), used by nothing, went.
    assert _sh(inventory, tags) == {h: "broken v1 " for h in DOCKER_HOSTS}
    # The host's own image of the same repository (a cron job of its own uses it): pushorch never
    # pulled it, so no prune removes it (issue 27 item 9).
    # It is the kept container's image, which this prune leaves unused: only its pulled tag goes.
    own = "ref=$(docker ps -q --filter label=pushorch.service=pr-a --format '{{.Image}}'); docker tag ${ref%:*}:broken ${ref%:*}:hostcron"
    _sh(inventory, own, "lab-1")
    bare = ("-e", "keep=0", "-e", "keep_images=0", str(playbook))
    listed = run_cli("prune", "-i", str(inventory), "--dry-run", *bare)
    assert listed.status == 0, listed.err
    removed = run_cli("prune", "-i", str(inventory), "--lock-file", str(tmp_path / "l"), *bare)
    assert removed.status == 0, removed.err
    would = sorted(line.replace("would remove", "removed") for line in listed.out.splitlines())
    assert would == sorted(removed.out.splitlines()) and len(would) == 6  # a container and an image per host
    assert _sh(inventory, tags) == {h: "hostcron v1 " if h == "lab-1" else "v1 " for h in DOCKER_HOSTS}
    assert _running(inventory, "pr-a") == {h: ["v1"] for h in DOCKER_HOSTS}
    assert run_cli("prune", "-i", str(inventory), "--dry-run", *bare).out == ""  # nothing left to remove


def test_a_rollout_in_a_terminal_shows_its_work_live_and_ends_with_the_recap(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "live-a", 18131, min_healthy_time="3s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    session = f"pushorch-live-{tmp_path.name}"
    # The pane's own width, not one inherited from the test runner's environment.
    command = f"env -u COLUMNS -u LINES {sys.executable} -m pushorch apply -i {inventory} -e v=v2 {playbook}; echo EXIT=$?; sleep 600"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", command], cwd=ROOT, check=True)
    frames: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("EXIT=" in f for f in frames[-1:]):
            time.sleep(0.5)
            shot = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
            frames.append(shot.stdout)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    # While it ran: the rollout's batch and a host's gate with its time so far, redrawn in place.
    live = [f for f in frames if "rollout  live-a: batch" in f and "gate live-a-" in f and "s, fails in " in f]
    assert len(live) >= 2, "\n=====\n".join(frames[-5:])
    assert "EXIT=0" in frames[-1] and "RECAP" in frames[-1] and "rollout live-a: done; updated 3" in frames[-1]
    assert "rollout  live-a" not in frames[-1]  # the live region is gone once the work is done
    assert _running(inventory, "live-a") == {h: ["v2"] for h in DOCKER_HOSTS}
    print("a frame of the live view:\n" + live[len(live) // 2])


def _tmux_session(name: str, command: str) -> None:
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "30", command], cwd=ROOT, check=True)


def _screen(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def _until(name: str, text: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        screen = _screen(name)
        if text in screen:
            return screen
        time.sleep(0.3)
    return _screen(name)


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
def test_exec_it_is_an_interactive_shell_in_the_service_container(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path, transport: str
) -> None:
    _, inventory = lab_inventory
    playbook = _talker(tmp_path)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    container = _sh(inventory, "docker ps -q --filter label=pushorch.service=talk-a", "lab-2")["lab-2"].strip()
    session = f"pushorch-it-{transport}-{tmp_path.name}"
    command = (
        f"{sys.executable} -m pushorch exec -it -i {inventory} -l lab-2 --transport {transport}"
        f" --service talk-a {playbook} -- sh; echo EXIT=$?; sleep 600"
    )
    _tmux_session(session, command)
    try:
        assert "#" in _until(session, "#")  # the container's shell prompt, on a terminal
        subprocess.run(
            ["tmux", "send-keys", "-t", session, "cat /etc/hostname; echo $((6*7)); tty", "Enter"], check=True
        )
        screen = _until(session, "/dev/pts/")
        assert container in screen and "\n42\n" in screen  # its hostname, arithmetic done there, a real tty
        subprocess.run(["tmux", "send-keys", "-t", session, "exit 3", "Enter"], check=True)
        assert "EXIT=3" in _until(session, "EXIT=")  # the remote exit status is the command's
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert (
        run_cli("exec", "-it", "-i", str(inventory), "--service", "talk-a", playbook, "--", "sh").status == 2
    )  # 3 hosts
