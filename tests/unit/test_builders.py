"""Pure builders, exact equality: what reaches a host is exactly this argv (quoted once, later)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from pushorch.commands import docker, files, marks, shell, system
from pushorch.commands.shell import become, join, quote
from pushorch.consul import commands as consul
from pushorch.secret import Secret
from pushorch.spec import Service


def _service(**extra: object) -> Service:
    return Service.model_validate({"name": "api", "image": "reg:5000/api:v2", **extra})


def test_docker_run_every_option() -> None:
    service = _service(
        ports=["8080:80", {"container": 9090, "host": None}, "127.0.0.1:53:53/udp"],
        env={"PLAIN": "a b", "TOKEN": Secret("t")},
        volumes=["/srv:/data:ro", "named:/cache"],
        command=["serve", "--port", "80"],
        user="1000:1000",
        restart="always",
        labels={"team": "x"},
        log={"driver": "json-file", "options": {"max-size": "10m"}},
        resources={"memory": "256m", "cpus": 0.5},
        stop_timeout="15s",
    )
    argv = docker.run(service, "api-12345678", {"pushorch.service": "api"}, "/etc/pushorch/env/api-12345678.env")
    assert argv == (
        "docker", "run", "-d", "--name", "api-12345678", "--restart", "always",
        "--label", "pushorch.service=api", "--label", "team=x",
        "-p", "8080:80/tcp", "-p", "9090/tcp", "-p", "127.0.0.1:53:53/udp",
        "-e", "PLAIN=a b", "--env-file", "/etc/pushorch/env/api-12345678.env",
        "-v", "/srv:/data:ro", "-v", "named:/cache",
        "--user", "1000:1000", "--memory", "256m", "--cpus", "0.5",
        "--log-driver", "json-file", "--log-opt", "max-size=10m", "--stop-timeout", "15",
        "reg:5000/api:v2", "serve", "--port", "80",
    )  # fmt: skip


def test_secret_env_goes_to_a_file_and_the_hash_never_holds_the_value() -> None:
    service = _service(env={"TOKEN": Secret("s3cret"), "A": "1"})
    assert docker.env_file(service, "api-1") == ("/etc/pushorch/env/api-1.env", "TOKEN=s3cret\n")
    assert "s3cret" not in json.dumps(docker.shape(service))
    assert docker.spec_hash(service) != docker.spec_hash(_service(env={"TOKEN": Secret("other"), "A": "1"}))
    assert docker.spec_hash(service) == docker.spec_hash(_service(env={"A": "1", "TOKEN": Secret("s3cret")}))


def test_docker_small_builders() -> None:
    assert docker.pull("r/i:1") == ("docker", "pull", "-q", "r/i:1")
    assert docker.login("reg:5000", "me") == ("docker", "login", "--username", "me", "--password-stdin", "reg:5000")
    assert docker.remove("api-1") == ("docker", "rm", "-f", "api-1")
    assert docker.container_name("api", "0123456789abcdef") == "api-01234567"


def test_system_builders() -> None:
    assert system.install_packages("dnf", ("moby-engine",)) == ("dnf", "install", "-y", "moby-engine")
    assert system.install_packages("apt-get", ("docker.io",)) == (
        "sh", "-c",
        "export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
        "apt-get install -y -qq --no-install-recommends docker.io",
    )  # fmt: skip
    assert system.ensure_path("/etc/a b", "directory", "0755", "www", None) == (
        "sh", "-c", "mkdir -p '/etc/a b' && chmod 0755 '/etc/a b' && chown www '/etc/a b'",
    )  # fmt: skip
    assert system.ensure_path("/x", "absent", None, None, None) == ("rm", "-rf", "--", "/x")
    assert system.parent_dir("/etc/consul.d/x.json") == ("mkdir", "-p", "-m", "755", "--", "/etc/consul.d")


def test_put_is_temp_chmod_rename(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "it's here" / "f"
    target.parent.mkdir()
    argv = files.put(str(target), 0o640, "tok")
    subprocess.run(argv, input=b"data", check=True)
    assert target.read_bytes() == b"data" and target.stat().st_mode & 0o777 == 0o640
    assert argv[2].count(quote(f"{target.parent}/.f.pushorch-tok")) == 4


def test_shell_quoting_and_become() -> None:
    assert join(["echo", "a b", "$HOME", "it's"]) == "echo 'a b' '$HOME' 'it'\"'\"'s'"
    assert shlex.split(join(["x", "; rm -rf /", "\n"])) == ["x", "; rm -rf /", "\n"]
    assert become(("id",)) == ("sudo", "-n", "--", "id")
    assert become(("id",), "app") == ("sudo", "-n", "-u", "app", "--", "id")


def test_consul_definition() -> None:
    service = _service(
        ports=["8080:80"],
        health={"http": {"path": "/health", "port": 80}},
        consul={"name": "api-svc", "tags": ["web"], "meta": {"team": "x"}},
    )
    body = json.loads(consul.definition(service, "web-1", "10.0.0.5", "v2", "abc"))
    assert body == {"service": {
        "id": "api-web-1", "name": "api-svc", "tags": ["web"], "address": "10.0.0.5", "port": 8080,
        "meta": {"team": "x", "pushorch_version": "v2", "pushorch_spec_hash": "abc"},
        "check": {"http": "http://10.0.0.5:8080/health", "interval": "10s", "timeout": "2s",
                  "deregister_critical_service_after": "5m"},
    }}  # fmt: skip
    assert consul.duration(0.5) == "500ms" and consul.duration(90) == "90s" and consul.duration(300) == "5m"
    assert consul.definition_path(service.consul, "api") == "/etc/consul.d/pushorch-api.json"  # type: ignore[arg-type]


def test_rollout_builders() -> None:
    service = _service(ports=["8080:80", "127.0.0.1:53:53/udp"])
    argv = docker.run(service, "api-1", {}, None, dynamic_ports=True)
    assert argv[argv.index("-p") : argv.index("-p") + 4] == ("-p", "80/tcp", "-p", "127.0.0.1::53/udp")
    assert docker.state("api-1") == (
        "docker", "inspect", "--format",
        "{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{end}}\n"
        "{{json .NetworkSettings.Ports}}\n{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "api-1",
    )  # fmt: skip
    assert docker.addresses("api-1") == (
        "docker", "inspect", "--format",
        "{{json .NetworkSettings.Ports}}\n{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "api-1",
    )  # fmt: skip
    assert docker.logs("api-1") == ("docker", "logs", "--tail", "10", "api-1")
    assert docker.exec_("api-1", ("/bin/check", "--fast")) == ("docker", "exec", "api-1", "/bin/check", "--fast")
    assert docker.stop("api-1", 15) == ("docker", "stop", "-t", "15", "api-1")


def test_consul_definition_moves_to_a_dynamic_port() -> None:
    service = _service(ports=["8080:80"], health={"http": {"path": "/health", "port": 80}}, consul={})
    moved = json.loads(consul.with_port(consul.definition(service, "web-1", "10.0.0.5", "v2", "abc"), 8080, 49153))
    assert moved["service"]["port"] == 49153
    assert moved["service"]["check"]["http"] == "http://10.0.0.5:49153/health"
    tcp = _service(ports=["8080:80"], health={"tcp": {"port": 80}}, consul={})
    moved = json.loads(consul.with_port(consul.definition(tcp, "web-1", "10.0.0.5", "v2", "abc"), 8080, 49153))
    assert moved["service"]["check"]["tcp"] == "10.0.0.5:49153"
    # No host port at all (start-first, ports: [{container: 80}]): the soak found the check written
    # as http://10.0.0.5:None/health, which with_port could not move (critical forever).
    unported = _service(ports=[{"container": 80}], health={"http": {"path": "/health", "port": 80}}, consul={})
    written = json.loads(consul.definition(unported, "web-1", "10.0.0.5", "v2", "abc"))
    assert written["service"]["check"]["http"] == "http://10.0.0.5:0/health"
    moved = json.loads(consul.with_port(json.dumps(written), 0, 49153))
    assert moved["service"]["port"] == 49153
    assert moved["service"]["check"]["http"] == "http://10.0.0.5:49153/health"


def test_start_docker_stops_waiting_when_dockerd_exits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Stubs on PATH: `docker info` never answers, `dockerd` dies at once (as when it cannot start).
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "dockerd").write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    for stub in ("docker", "dockerd"):
        (tmp_path / stub).chmod(0o755)
    argv = system.start_docker(False)
    script = argv[2].replace("/var/log/dockerd.log", str(tmp_path / "dockerd.log"))
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=20, check=False)
    assert done.returncode == 1 and done.stderr.startswith("dockerd exited\ncannot start")


def test_a_drifted_instance_is_started_a_second_time_when_dockerd_refuses_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A dockerd just back from a crash refuses the first start (the soak, seed 1 round 21); the stub
    # refuses once, then starts it; a start refused twice still fails, with the second answer.
    (tmp_path / "docker").write_text(
        '#!/bin/sh\nif [ -e "$0.once" ]; then echo "started $2"; exit 0; fi\n: > "$0.once"\necho refused >&2; exit 1\n'
    )
    (tmp_path / "docker").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(
        docker.start_again("web; x"), capture_output=True, text=True, env=env, timeout=20, check=False
    )
    assert (done.returncode, done.stdout) == (0, "started web; x\n")
    (tmp_path / "docker").write_text('#!/bin/sh\necho "refused $2" >&2; exit 1\n')
    done = subprocess.run(docker.start_again("web"), capture_output=True, text=True, env=env, timeout=20, check=False)
    assert (done.returncode, done.stderr) == (1, "refused web\n")


def test_replacement_builders_pass_names_as_arguments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    argv = docker.run_replacing("api-1; rm -rf /", ("docker", "run", "-d", "img"))
    assert argv[:2] == ("sh", "-c") and argv[3:] == ("api-1; rm -rf /", "docker", "run", "-d", "img")
    assert "api-1" not in argv[2] and argv[2].endswith('docker rm -f "$0" >/dev/null 2>&1; exec "$@"')
    assert f': > {marks.UNGATED_DIR}/"$0"' in argv[2]  # marked ungated before it starts
    # A kept container that becomes the new instance is marked too (the soak, seed 1 round 9: a run
    # killed between `docker start` of it and its gate left it taken for serving, never gated).
    kept = docker.start_marked("api-1; rm -rf /")
    assert kept[:2] == ("sh", "-c") and kept[3:] == ("api-1; rm -rf /",) and "api-1" not in kept[2]
    assert kept[2].startswith(f"mkdir -p {marks.UNGATED_DIR}") and kept[2].endswith('exec docker start "$0"')
    assert marks.gate_passed("api-1", "api") == (
        "rm",
        "-f",
        "--",
        f"{marks.UNGATED_DIR}/api-1",
        f"{marks.HOLD_DIR}/api",
    )
    assert docker.stop("a", 5, "b") == ("docker", "stop", "-t", "5", "a", "b")
    definition = tmp_path / "odd name; $(x).json"
    definition.write_text('{"service": {}}\n')
    done = subprocess.run(consul.take_definition(str(definition)), capture_output=True, text=True, check=True)
    assert done.stdout == '{"service": {}}\n' and not definition.exists()
    again = subprocess.run(consul.take_definition(str(definition)), capture_output=True, text=True, check=False)
    assert (again.returncode, again.stdout) == (0, "")  # nothing registered: nothing to keep


def test_bounded_ends_the_command_on_the_host_at_its_deadline() -> None:
    argv = shell.bounded(("docker", "run", "x y"), 4.6)
    assert argv == (
        "sh",
        "-c",
        'if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$0" "$@"; fi; exec "$@"',
        "5",
        "docker",
        "run",
        "x y",
    )
    assert shell.bounded(("true",), None) == ("true",)
    # In a real sh (as sshd runs it): a command past its deadline is killed there; one within it keeps its status.
    late = subprocess.run(["sh", "-c", join(shell.bounded(("sleep", "30"), 1))], check=False)
    assert late.returncode in shell.DEADLINE_STATUSES
    assert subprocess.run(["sh", "-c", join(shell.bounded(("sh", "-c", "exit 3"), 5))], check=False).returncode == 3


def test_docker_run_options_map_to_their_flags_and_join_the_hash() -> None:
    plain = Service.model_validate({"name": "app", "image": "reg/app:1"})
    given = Service.model_validate(
        {
            "name": "app",
            "image": "reg/app:1",
            "cap_add": ["NET_ADMIN"],
            "cap_drop": ["MKNOD"],
            "devices": ["/dev/fuse:/dev/fuse:rwm"],
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
            "extra_hosts": {"db.internal": "10.0.0.5"},
            "sysctls": {"net.core.somaxconn": 1024},
            "tmpfs": ["/tmp", "/run:size=16m"],
            "read_only": True,
            "init": True,
            "shm_size": "64m",
            "security_opt": ["no-new-privileges"],
            "hostname": "app-1",
            "gpus": "all",
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "http://x/health"], "interval": "5s", "retries": 2},
            "options": ["--pids-limit", "200"],
        }
    )
    argv = list(docker.run(given, "app-x", {}, None))
    flags = argv[argv.index("--stop-timeout") + 2 : argv.index("reg/app:1")]
    assert flags == [
        "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--device", "/dev/fuse:/dev/fuse:rwm",
        "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512:512", "--add-host", "db.internal:10.0.0.5",
        "--sysctl", "net.core.somaxconn=1024", "--tmpfs", "/tmp", "--tmpfs", "/run:size=16m", "--read-only",
        "--init", "--shm-size", "64m", "--security-opt", "no-new-privileges", "--hostname", "app-1",
        "--gpus", "all", "--health-cmd", "wget -q -O- http://x/health", "--health-interval", "5s",
        "--health-retries", "2", "--pids-limit", "200",
    ]  # fmt: skip
    assert docker.spec_hash(given) != docker.spec_hash(plain)
    # Unset options leave the hash as it was before they existed: no container is replaced for them.
    assert "cap_add" not in docker.shape(plain) and "read_only" in docker.shape(given)
    off = Service.model_validate({"name": "a", "image": "r/a:1", "healthcheck": {"disable": True}})
    assert "--no-healthcheck" in docker.run(off, "a-x", {}, None)


def test_a_bounded_job_removes_its_container_at_the_deadline() -> None:
    argv = docker.bounded_job(("docker", "run", "--rm", "--name", "web-job-m", "img", "migrate"), "web-job-m", 2.6)
    assert argv[:2] == ("sh", "-c") and argv[3:] == (
        "web-job-m", "3", "docker", "run", "--rm", "--name", "web-job-m", "img", "migrate"
    )  # fmt: skip
    assert 'timeout -s KILL "$t" "$@"' in argv[2] and 'docker rm -f "$n"' in argv[2]


def test_a_bounded_job_in_a_real_shell_exits_137_and_names_what_it_removes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess

    # A `docker` on PATH that records what it is asked: the job's run sleeps, the removal is logged.
    (tmp_path / "docker").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n[ "$1" = run ] && exec sleep 30\n')
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(docker.bounded_job(("docker", "run", "img"), "j-1", 1), env=env, timeout=20)
    assert done.returncode == 137
    assert (tmp_path / "calls").read_text().splitlines() == ["run img", "rm -f j-1"]


def test_become_with_a_password_is_one_sudo_and_the_sync_lines() -> None:
    from pushorch.commands import shell

    argv = shell.become_with_password(("id", "-un"), "app")
    assert argv[:9] == ("sudo", "-S", "-p", "", "-u", "app", "--", "sh", "-c")
    assert argv[10:] == (shell.BECOME_SYNC, "id", "-un")
    assert shell.password_input("pw 1") == b"pw 1\n" + (shell.BECOME_SYNC.encode() + b"\n") * 3


def test_the_sync_wrapper_gives_the_command_exactly_its_own_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The inner shell of become_with_password, run without sudo: whether sudo took the password
    line (as when it asks) or left it (NOPASSWD), the command reads only what follows the sync lines."""
    import subprocess

    from pushorch.commands import shell

    inner = shell.become_with_password(("cat",))[7:]  # sh -c SCRIPT SYNC cat
    sync = (shell.BECOME_SYNC + "\n") * 3
    for stdin in (sync + "data\n", "the-password\n" + sync + "data\n"):
        assert subprocess.run(inner, input=stdin, capture_output=True, text=True).stdout == "data\n"
    lost = subprocess.run(inner, input="the-password\nsomething else\n", capture_output=True, text=True)
    assert lost.returncode == shell.BECOME_SYNC_LOST and lost.stdout == ""


def test_history_appends_whole_records_rotates_and_reads_both_generations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 27 item 11: history.jsonl grew without bound, and a line a cut write left unfinished
    swallowed the next record. In a real sh."""
    from pushorch.fleet import history

    path = str(tmp_path / "lib" / "history.jsonl")

    def append(*records: dict[str, str], limit: int = 10_000) -> None:
        argv, data = history.append(list(records), limit, path)
        subprocess.run(argv, input=data, check=True)

    def read() -> list[dict[str, str]]:
        return history.parse("h", subprocess.run(history.read(path), capture_output=True, text=True).stdout)

    append({"service": "a", "to": "v1"})
    with open(path, "a") as handle:
        handle.write(
            '{"service": "cut',
        )  # a write cut short (a full disk, a killed run)
    append({"service": "b", "to": "v2"}, {"service": "c", "to": "v3"})
    assert [r["service"] for r in read()] == ["a", "b", "c"]  # the cut line is lost, not the next ones
    # ... and it is gone from the file: every line a whole record (the soak read a cut line in every
    # round after a full disk)
    with open(path) as handle:
        assert [json.loads(line)["service"] for line in handle] == ["a", "b", "c"]
    for index in range(40):
        append({"service": f"s{index}", "reason": "x" * 400}, limit=4000)
    assert os.path.getsize(path) < 4000 + 1000 and os.path.exists(path + ".1")
    services = [r["service"] for r in read()]
    assert services[-1] == "s39" and services == sorted(services, key=lambda s: int(s[1:]))  # oldest first


DOCKER_STUB = r"""#!/bin/sh
# A docker that answers the prune script from canned lines and logs what it removes.
case "$1" in
  ps) echo "c1 c2 c3 c4";;
  inspect) printf '%s\n' \
    "2026-12-03T00:00:00Z exited sha256:i2 /web-cur web" \
    "2026-12-02T00:00:00Z exited sha256:i1 /web-v1 web" \
    "2026-12-01T00:00:00Z exited sha256:i0 /web-v0 web" \
    "0001-01-01T00:00:00Z running sha256:i9 /api-cur api";;
  images) printf '%s\n' "sha256:i2 reg/app:v2" "sha256:i1 reg/app:v1" "sha256:i0 reg/app:v0" \
    "sha256:ix reg/app:hostcron" "sha256:iy reg/app:<none>";;
  rm|rmi) echo "$*" >> "$STUB_LOG";;
esac
"""


def test_prune_keeps_by_the_planners_rule_and_only_removes_images_pushorch_fetched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 27 item 9, in a real sh: a hand-stopped current container is not a kept version; an image
    of the repository that pushorch never pulled (the host's own) stays; one script for every service
    of the host, so a dry run lists exactly what the run removes (two services share a repository)."""
    from pushorch.commands import service_scripts

    (tmp_path / "docker").write_text(DOCKER_STUB)
    (tmp_path / "docker").chmod(0o755)
    pulled = tmp_path / "images"
    pulled.write_text("reg/app:v0\nreg/app:v1\nreg/app:v2\n")
    argv = service_scripts.prune([("web", 1, "web-cur"), ("api", 1, "api-cur")], [("reg/app", 1), ("reg/app", 0)])
    argv = (*argv[:4], str(pulled), *argv[5:])
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "STUB_LOG": str(tmp_path / "log")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert done.stdout.splitlines() == [
        "removed container web-v0",
        "removed image reg/app:v0",
        "removed image sha256:iy",
    ]
    assert (tmp_path / "log").read_text().splitlines() == ["rm -f web-v0", "rmi reg/app:v0", "rmi sha256:iy"]
    dry = subprocess.run((argv[0], argv[1], argv[2], "1", *argv[4:]), capture_output=True, text=True, env=env)
    assert dry.stdout == done.stdout.replace("removed", "would remove")


def test_history_of_a_drift_restart_says_which_version_runs_after_it() -> None:
    """The soak, seed 1 round 21: a failed replace (dockerd killed) left v2, the next run started it
    again as drift, and the history's record of that had no version: it read as v1 still running."""
    from pushorch.actions import RestartContainer
    from pushorch.events import Event
    from pushorch.fleet import history

    restart = RestartContainer("h1", "exited (drift)", service="web", name="web-ab12", version="v2")
    lines = history.records([Event("h1", "changed", restart, "")], "me@here", "pushorch reconcile")
    assert [(r["action"], r["from"], r["to"], r["result"]) for r in lines["h1"]] == [("restart", "v2", "v2", "changed")]
