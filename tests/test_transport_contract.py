"""One contract, both SSH transports, against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pushorch.commands.shell import sh
from pushorch.connection import ConnectionSettings
from pushorch.errors import AuthenticationError, BecomeFailed, CommandFailed, CommandTimeout, ConnectError
from pushorch.fanout import run_everywhere
from pushorch.secret import Secret
from pushorch.transport import open_transport
from pushorch.transport.base import Transport
from tests.conftest import SUDO_USER_PASSWORD, TEST_PASSWORD
from tests.harness.sshd import Sshd, free_port, keygen

TRANSPORTS = ["asyncssh", "paramiko"]


# The sshd process serving this connection: the first above the command (transports may wrap it in a
# shell of their own).
SSHD_ABOVE = (
    "p=$PPID; until case $(cat /proc/$p/comm) in sshd*) true;; *) false;; esac; "
    'do p=$(cut -d" " -f4 /proc/$p/stat); done; echo $p'
)


def settings(server: Sshd, index: int = 1, transport: str = "asyncssh", **changes: object) -> ConnectionSettings:
    base = ConnectionSettings(
        name=f"h{index}",
        address=server.addresses[index - 1],
        port=server.port,
        user="root",
        key_files=(str(server.client_key),),
        known_hosts=str(server.known_hosts),
        transport=transport,
        connect_timeout=5.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def connected(s: ConnectionSettings) -> Transport:
    transport = open_transport(s)
    await transport.connect()
    return transport


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_exit_status_stdout_stderr_stdin(sshd: Sshd, kind: str) -> None:
    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            r = await t.run(sh("echo out; echo err >&2; exit 7"))
            assert (r.exit_status, r.stdout, r.stderr, r.ok) == (7, "out\n", "err\n", False)
            with pytest.raises(CommandFailed, match="h1: probe: exit 7: err"):
                r.check("probe")
            r = await t.run(["cat"], stdin=b"through stdin \xe2\x9c\x93\n")
            assert r.stdout == "through stdin \u2713\n" and r.ok
            r = await t.run(["printf", "%s|", "a b", "$HOME", "'q'", "x;y"])
            assert r.stdout == "a b|$HOME|'q'|x;y|"  # argv arrives byte-exact, nothing expanded
        finally:
            await t.close()

    run(go())


def test_a_command_that_ends_before_reading_its_input_is_its_exit_status_not_a_lost_host(sshd: Sshd, kind: str) -> None:
    """The soak's finding (a fresh seed's first apply, two labs coming up): a command given input that
    ended first (`cat > missing-dir/f`) raced the write of that input, and the write's broken pipe was
    reported as "connection lost": the host counted as UNREACHABLE (failover's evidence), a quarter of
    the time with asyncssh, a few percent with paramiko, 8 at once."""

    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            # small input races the write; large input races paramiko's sends with the channel's close
            for size in [100] * 25 + [200_000] * 20:
                runs = [t.run(sh("exit 3"), stdin=b"x" * size) for _ in range(8)]
                results = await asyncio.gather(*runs, return_exceptions=True)
                assert [r.exit_status if not isinstance(r, BaseException) else str(r) for r in results] == [3] * 8
            with pytest.raises(CommandFailed, match="Directory nonexistent"):
                await t.put(b"data", "/nonexistent-dir/file")
            assert (await t.run(["cat"], stdin=b"still connected")).stdout == "still connected"
        finally:
            await t.close()

    run(go())


def test_ten_megabytes_of_output(sshd: Sshd, kind: str) -> None:
    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            r = await t.run(sh("head -c 10000000 /dev/zero | tr '\\0' a; head -c 100000 /dev/zero | tr '\\0' e >&2"))
            assert len(r.stdout) == 10_000_000 and set(r.stdout) == {"a"}
            assert len(r.stderr) == 100_000
        finally:
            await t.close()

    run(go())


def test_command_timeout_then_connection_still_usable(sshd: Sshd, kind: str) -> None:
    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            with pytest.raises(CommandTimeout, match=r"h1: sleep 30: no result after 0\.5s"):
                await t.run(["sleep", "30"], timeout=0.5)
            assert (await t.run(["true"])).ok
        finally:
            await t.close()

    run(go())


def test_put_is_atomic_and_sets_the_mode(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    target = tmp_path / "dir with space" / "file'quoted"
    target.parent.mkdir()
    target.write_text("old")
    old_inode = target.stat().st_ino

    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            await t.put(b"new content\n", str(target), 0o640)
            # An empty file (an ingress host's server file before its instance runs) once waited
            # forever: asyncssh sent no EOF for empty input, so the remote `cat` never ended.
            await asyncio.wait_for(t.put(b"", str(tmp_path / "empty"), 0o644), 20)
            assert (await asyncio.wait_for(t.run(["cat"]), 20)).stdout == ""  # no input: stdin ends at once
            with pytest.raises(CommandFailed):
                await t.put(b"x", str(tmp_path / "missing-dir" / "f"), 0o600)
        finally:
            await t.close()

    run(go())
    assert target.read_bytes() == b"new content\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "empty").read_bytes() == b""
    assert target.stat().st_ino != old_inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["file'quoted"]  # no temp file left


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP echo server on the host side (127.0.0.1), reached only through the SSH connection."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"echo:" + conn.recv(1024))

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def test_open_tcp_from_the_host_side(sshd: Sshd, kind: str, echo_server: int) -> None:
    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            stream = await t.open_tcp("127.0.0.1", echo_server)
            await stream.write(b"ping")
            assert await stream.read(100) == b"echo:ping"
            await stream.close()
            with pytest.raises(ConnectionRefusedError):
                await t.open_tcp("127.0.0.1", free_port("127.0.0.1"))
        finally:
            await t.close()

    run(go())


def test_a_connection_lost_under_an_open_tcp_stream_is_a_lost_host(sshd: Sshd, kind: str) -> None:
    """The soak (seed 358149 round 50): a host restarted during an HTTP gate's read; asyncssh's
    ConnectionLost came out of the stream unconverted and crashed the controller (internal error)."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers: the read waits

    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            stream = await t.open_tcp("127.0.0.1", silent.getsockname()[1])
            session = (await t.run(["sh", "-c", SSHD_ABOVE])).stdout.strip()
            reading = asyncio.ensure_future(stream.read(100))
            await asyncio.sleep(0.2)
            os.kill(int(session), 9)  # the sshd process serving this connection: the host is gone
            # a lost host (as any other command on that connection would say), or EOF: an answer too
            with contextlib.suppress(ConnectError):
                assert await asyncio.wait_for(reading, 10) == b""
        finally:
            await t.close()

    try:
        run(go())
    finally:
        silent.close()


def test_a_connection_lost_while_a_command_runs_is_a_lost_host_at_once(sshd: Sshd, kind: str) -> None:
    """Found by the suite: paramiko's channel, closed with its connection, made the wait for the
    command's output spin at full CPU until the command's deadline, forever without one."""

    async def go() -> None:
        t = await connected(settings(sshd, transport=kind))
        try:
            session = (await t.run(["sh", "-c", SSHD_ABOVE])).stdout.strip()
            sleeping = asyncio.ensure_future(t.run(["sleep", "60"]))  # no deadline
            await asyncio.sleep(0.5)
            os.kill(int(session), 9)
            with pytest.raises(ConnectError, match="connection lost"):
                await asyncio.wait_for(sleeping, 10)
        finally:
            await t.close()

    run(go())


def test_strict_refuses_an_unknown_host_key(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectError, match=r"h1: host key of 127\.0\.1\.1:\d+ not verified .*accept-new"):
        run(connected(settings(sshd, transport=kind, known_hosts=str(empty))))


def test_accept_new_trusts_on_first_use_then_verifies(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    learned = tmp_path / "known_hosts"
    s = settings(sshd, transport=kind, known_hosts=str(learned), host_key_checking="accept-new")

    async def go() -> None:
        await (await connected(s)).close()

    run(go())
    assert learned.read_text().split() == [f"[127.0.1.1]:{sshd.port}", "ssh-ed25519", sshd.host_public_key()]
    run(go())  # second time: verified against what was learned (no duplicate line)
    assert len(learned.read_text().splitlines()) == 1
    run(connected(replace(s, host_key_checking="strict")))


def test_changed_key_is_refused_even_with_accept_new(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    keygen(other)
    kind_, body = Path(f"{other}.pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.1.1]:{sshd.port} {kind_} {body}\n")
    for policy in ("strict", "accept-new"):
        with pytest.raises(ConnectError, match="not verified"):
            run(connected(settings(sshd, transport=kind, known_hosts=str(wrong), host_key_checking=policy)))
    assert wrong.read_text() == f"[127.0.1.1]:{sshd.port} {kind_} {body}\n"  # nothing rewritten
    run(connected(settings(sshd, transport=kind, known_hosts=str(wrong), host_key_checking="off")))


def test_hashed_and_revoked_known_hosts_entries(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    """Hashed names (HashKnownHosts, Debian's default) verify; a key marked @revoked is refused."""
    known = tmp_path / "known_hosts"
    line = f"[127.0.1.1]:{sshd.port} ssh-ed25519 {sshd.host_public_key()}\n"
    known.write_text(line)
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert known.read_text().startswith("|1|")
    run(connected(settings(sshd, transport=kind, known_hosts=str(known))))
    known.write_text(line + f"@revoked {line}")
    for policy in ("strict", "accept-new"):
        with pytest.raises(ConnectError, match="not verified"):
            run(connected(settings(sshd, transport=kind, known_hosts=str(known), host_key_checking=policy)))
    assert known.read_text() == line + f"@revoked {line}"  # nothing learned


def test_wrong_client_key_is_an_authentication_error(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    keygen(stranger)
    with pytest.raises(AuthenticationError, match="h1: authentication refused for user root"):
        run(connected(settings(sshd, transport=kind, key_files=(str(stranger),))))


def test_closed_port_fails_fast(sshd: Sshd, kind: str) -> None:
    # How fast: bench/timeouts.py (no timed assertions in tests).
    with pytest.raises(ConnectError, match=r"h1: cannot connect to 127\.0\.1\.1:\d+"):
        run(connected(settings(sshd, transport=kind, port=free_port())))


def test_silent_port_is_bounded_by_the_connect_timeout(kind: str) -> None:
    # Accepts TCP, never speaks SSH.
    silent = socket.create_server(("127.0.1.1", 0))
    port = silent.getsockname()[1]
    try:
        s = ConnectionSettings(name="mute", address="127.0.1.1", port=port, connect_timeout=1.0, transport=kind)
        with pytest.raises(ConnectError, match=r"mute: no SSH answer from 127\.0\.1\.1:\d+ within 1s"):
            run(connected(s))
    finally:
        silent.close()


@pytest.fixture(scope="module")
def jump_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """Three hosts whose sshd logs direct-tcpip requests, so a test can see the jumps happen."""
    server = Sshd(tmp_path_factory.mktemp("jump"), 3, log_level="DEBUG1").start()
    yield server
    server.stop()


def test_proxy_jump_single_and_chained(jump_sshd: Sshd, kind: str) -> None:
    a1, a2, a3 = jump_sshd.addresses
    log = jump_sshd.workdir / "sshd.log"
    for chain, hops in (
        (f"root@{a1}:{jump_sshd.port}", [a3]),
        (f"root@{a1}:{jump_sshd.port},root@{a2}:{jump_sshd.port}", [a2, a3]),
    ):
        before = log.read_text(errors="replace")
        s = settings(jump_sshd, 3, transport=kind, proxy_jump=chain)

        async def go(s: ConnectionSettings = s) -> str:
            t = await connected(s)
            try:
                return (await t.run(["echo", "via jump"])).stdout
            finally:
                await t.close()

        assert run(go()) == "via jump\n"
        added = log.read_text(errors="replace")[len(before) :]
        for hop in hops:
            assert f"target {hop} port {jump_sshd.port}" in added, added[-2000:]


def test_become_with_and_without_sudo_rights(sshd: Sshd, kind: str, become_users: dict[str, bool]) -> None:
    async def go(user: str, become: bool) -> str:
        t = await connected(settings(sshd, transport=kind, user=user, become=become))
        try:
            return (await t.run(["id", "-un"])).check().stdout.strip()
        finally:
            await t.close()

    assert run(go("pushorch-sudo", False)) == "pushorch-sudo"
    assert run(go("pushorch-sudo", True)) == "root"
    with pytest.raises(BecomeFailed, match="h1: become: sudo needs a password for pushorch-nosudo"):
        run(go("pushorch-nosudo", True))


def test_become_with_a_sudo_password(sshd: Sshd, kind: str, become_users: dict[str, bool]) -> None:
    """sudo that asks for a password: it goes on stdin (never argv, never a process list), the command
    still gets its own stdin after it, and a wrong password is a clear failure, not a hang."""
    right = settings(
        sshd, transport=kind, user="pushorch-pwsudo", become=True, become_password=Secret(SUDO_USER_PASSWORD)
    )
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            stop.wait(0.05)

    async def go(which: ConnectionSettings) -> tuple[str, str, str]:
        t = await connected(which)
        try:
            who = (await t.run(["id", "-un"])).check().stdout.strip()
            await t.put(b"line one\nline two\n", "/tmp/pushorch-pwsudo-test", 0o600)
            back = (await t.run(["cat", "/tmp/pushorch-pwsudo-test"])).check().stdout
            owner = (await t.run(["stat", "-c", "%U", "/tmp/pushorch-pwsudo-test"])).check().stdout.strip()
            await t.run(["sleep", "1"])
            return who, back, owner
        finally:
            await t.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert run(go(right)) == ("root", "line one\nline two\n", "root")
    finally:
        stop.set()
        watcher.join()
    assert seen and not any(SUDO_USER_PASSWORD in ps for ps in seen)
    # A command that waited for more input would end in CommandTimeout, not in this error.
    wrong = replace(right, become_password=Secret("not-the-password"), command_timeout=60)
    with pytest.raises(BecomeFailed, match="h1: become: sudo refused the become password for pushorch-pwsudo"):
        run(go(wrong))
    without = replace(right, become_password=None)
    with pytest.raises(BecomeFailed, match="sudo needs a password for pushorch-pwsudo"):
        run(go(without))


@pytest.fixture(scope="module")
def bash_as_sh_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A host where `sh` is bash (RHEL, Fedora): bash execs a script's last command, so a process
    started there has another parent than the script's earlier commands."""
    import tempfile

    bin_dir = Path(tempfile.mkdtemp(prefix="pushorch-bash-sh-"))
    bin_dir.chmod(0o755)  # the test users must reach it
    (bin_dir / "sh").symlink_to("/bin/bash")
    server = Sshd(
        tmp_path_factory.mktemp("bash-sh"), 1, extra_config=f"SetEnv PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin\n"
    ).start()
    yield server
    server.stop()
    shutil.rmtree(bin_dir)


@pytest.fixture
def sudo_without_cache(become_users: dict[str, bool]) -> Iterator[None]:
    """sudoers with timestamp_timeout=0 for the password user: sudo caches no credential at all."""
    rule = Path("/etc/sudoers.d/pushorch-tests-nocache")
    rule.write_text("Defaults:pushorch-pwsudo timestamp_timeout=0\n")
    rule.chmod(0o440)
    try:
        yield
    finally:
        rule.unlink()


def _as_root_with_password(server: Sshd, kind: str) -> tuple[str, str, str]:
    """id, a file put through sudo and read back, and what a command reads on its stdin after the
    password, as pushorch-pwsudo with its sudo password."""
    which = settings(
        server, transport=kind, user="pushorch-pwsudo", become=True, become_password=Secret(SUDO_USER_PASSWORD)
    )

    async def go() -> tuple[str, str, str]:
        t = await connected(which)
        try:
            who = (await t.run(["id", "-un"])).check().stdout.strip()
            await t.put(b"first\nsecond\n", "/tmp/pushorch-pwsudo-nocache", 0o600)
            back = (await t.run(["cat", "/tmp/pushorch-pwsudo-nocache"])).check().stdout
            fed = (await t.run(["cat"], stdin=b"own input\n")).check().stdout
            return who, back, fed
        finally:
            await t.close()

    return run(go())


def test_sudo_with_a_password_needs_no_credential_cache(
    sshd: Sshd, kind: str, become_users: dict[str, bool], sudo_without_cache: None
) -> None:
    assert _as_root_with_password(sshd, kind) == ("root", "first\nsecond\n", "own input\n")


def test_sudo_with_a_password_where_sh_is_bash(bash_as_sh_sshd: Sshd, kind: str, become_users: dict[str, bool]) -> None:
    async def shell_of_sh() -> str:
        t = await connected(settings(bash_as_sh_sshd, transport=kind, user="pushorch-pwsudo"))
        try:
            return (await t.run(["sh", "-c", "echo ${BASH_VERSION:+bash}"])).check().stdout.strip()
        finally:
            await t.close()

    assert run(shell_of_sh()) == "bash"  # the host is what the test says it is
    assert _as_root_with_password(bash_as_sh_sshd, kind) == ("root", "first\nsecond\n", "own input\n")


def test_hundred_hosts_at_once(tmp_path: Path, kind: str) -> None:
    with_hosts = Sshd(tmp_path / "fleet", 100).start()
    try:
        hosts = [settings(with_hosts, i, transport=kind, name=f"n{i}") for i in range(1, 101)]
        outcomes = run(run_everywhere(hosts, ["sh", "-c", "echo $SSH_CONNECTION"], forks=50))
        assert [o.status for o in outcomes] == ["ok"] * 100
        # Each host answered on its own address: 100 distinct hosts, not one host 100 times.
        seen = {o.result.stdout.split()[2] for o in outcomes if o.result}
        assert seen == set(with_hosts.addresses)
    finally:
        with_hosts.stop()


def test_local_transport_runs_through_sh(tmp_path: Path) -> None:
    s = ConnectionSettings(name="me", address="localhost", transport="local")

    async def go() -> None:
        t = await connected(s)
        r = await t.run(["printf", "%s", "a b;$x"])
        assert (r.exit_status, r.stdout) == (0, "a b;$x")
        await t.put(b"data", str(tmp_path / "f"), 0o600)

    run(go())
    assert (tmp_path / "f").read_bytes() == b"data" and (tmp_path / "f").stat().st_mode & 0o777 == 0o600


def _remote_address(s: ConnectionSettings) -> str:
    async def go() -> str:
        t = await connected(s)
        try:
            return (await t.run(["sh", "-c", "echo $SSH_CONNECTION"])).stdout.split()[2]
        finally:
            await t.close()

    return str(run(go()))


def test_ssh_config_hostname_port_user_identity_and_match(sshd: Sshd, kind: str, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host cfg-host\n  HostName {sshd.addresses[1]}\n  Port {sshd.port}\n  IdentityFile {sshd.client_key}\n"
        "Match host cfg-host\n  User root\n"
    )
    s = ConnectionSettings(
        name="cfg",
        address="cfg-host",
        ssh_config=str(config),
        transport=kind,
        known_hosts=str(sshd.known_hosts),
        connect_timeout=5,
    )
    assert _remote_address(s) == sshd.addresses[1]


def test_ssh_config_include_asyncssh(sshd: Sshd, tmp_path: Path) -> None:
    # Include is asyncssh's (and OpenSSH's); paramiko's SSHConfig does not implement it (docs/ssh.md).
    included = tmp_path / "included.conf"
    included.write_text(f"Host inc-host\n  HostName {sshd.addresses[2]}\n  Port {sshd.port}\n  User root\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Include {included}\nHost inc-host\n  IdentityFile {sshd.client_key}\n")
    s = ConnectionSettings(name="inc", address="inc-host", ssh_config=str(config), known_hosts=str(sshd.known_hosts))
    assert _remote_address(s) == sshd.addresses[2]


def test_ssh_agent_identity(sshd: Sshd, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no default keys: only the agent can authenticate
        config = tmp_path / "ssh_config"
        config.write_text(f"Host *\n  IdentityAgent {sock}\n")
        s = settings(sshd, transport=kind, key_files=(), ssh_config=str(config))
        assert _remote_address(s) == sshd.addresses[0]
    finally:
        agent.terminate()


def test_password_is_a_secret_and_works(sshd: Sshd, kind: str, become_users: dict[str, bool]) -> None:
    s = settings(sshd, transport=kind, user="pushorch-nosudo", key_files=(), password=Secret(TEST_PASSWORD))
    assert "pushorch-test" not in repr(s)
    assert _remote_address(s) == sshd.addresses[0]


def test_ansible_can_use_the_same_hosts(sshd: Sshd, tmp_path: Path) -> None:
    # The harness inventory is valid for ansible too (the benchmark relies on it).
    inventory = sshd.inventory(tmp_path / "inv.yml")
    done = subprocess.run(
        [
            os.path.join(os.path.dirname(os.sys.executable), "ansible"),
            "all",
            "-i",
            str(inventory),
            "-m",
            "raw",
            "-a",
            "true",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
