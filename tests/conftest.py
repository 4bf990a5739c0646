"""Shared test helpers: run the CLI in-process and capture what it printed and its exit status."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pushorch.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The local run lock (and anything else under XDG_RUNTIME_DIR) is this test session's own: a
    developer's pushorch, or another test session, never holds it."""
    os.environ["XDG_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("runtime"))


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Call `pushorch ARGS...` in this process; returns status, stdout and stderr."""

    def run(*args: str, cwd: str | os.PathLike[str] | None = None) -> Run:
        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            try:
                main(list(args))
                status = 0
            except SystemExit as exc:
                status = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        finally:
            os.chdir(old)
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real OpenSSH sshd serving 4 loopback hosts (127.0.1.1-4) for the whole session."""
    from tests.harness.sshd import Sshd

    server = Sshd(tmp_path_factory.mktemp("sshd"), 4).start()
    yield server
    server.stop()


BECOME_USERS = {"pushorch-sudo": True, "pushorch-nosudo": False, "pushorch-pwsudo": False}
TEST_PASSWORD = "pushorch-test-pw-1"  # the nosudo user's password, for password authentication tests
SUDO_USER_PASSWORD = "pushorch-sudo-pw-2"  # pushorch-pwsudo's: its sudo asks for it


@pytest.fixture(scope="session")
def become_users() -> dict[str, bool]:
    """Two local users: one with passwordless sudo, one without sudo rights (created if missing)."""
    import fcntl
    import shutil

    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("useradd"):
        pytest.fail("become tests need root, sudo and useradd: run them as root after scripts/setup")
    # The suite runs in two processes (pytest-xdist): one creates the users while the other waits.
    with open("/run/pushorch-tests-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _create_become_users()
    return BECOME_USERS


def _create_become_users() -> None:
    import pwd
    import subprocess

    for user in BECOME_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
        # sshd refuses logins to accounts with a locked password ('!'); '*' means "no password" instead.
        subprocess.run(["usermod", "-p", "*", user], check=True)
    passwords = f"pushorch-nosudo:{TEST_PASSWORD}\npushorch-pwsudo:{SUDO_USER_PASSWORD}\n"
    subprocess.run(["chpasswd"], input=passwords, text=True, check=True)
    rule = "".join(f"{u} ALL=(ALL) NOPASSWD: ALL\n" for u, ok in BECOME_USERS.items() if ok)
    rule += "pushorch-pwsudo ALL=(ALL) ALL\n"  # sudo asks this one for its password
    Path("/etc/sudoers.d/pushorch-tests").write_text(rule)
    os.chmod("/etc/sudoers.d/pushorch-tests", 0o440)


def start_lab(factory: pytest.TempPathFactory, bare: int = 1, edges: int = 0, name: str = "lab"):  # type: ignore[no-untyped-def]
    """A lab (3 Docker hosts, `bare` bare ones, `edges` ingress hosts) in a fresh directory; fails
    (never skips) without Docker."""
    import subprocess

    from pushorch.lab.cluster import Lab

    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("no Docker daemon: the lab tests need one (.ci/run starts dockerd)")
    lab = Lab(factory.mktemp(name) / ".lab")
    return lab, lab.up(3, bare, lambda _: None, edges=edges)


@pytest.fixture(scope="session")
def lab_inventory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The lab for the lab_* test modules; torn down at the end of the session."""
    lab, inventory = start_lab(tmp_path_factory)
    yield lab, inventory
    lab.down(lambda _: None)


# The longest files first: with the suite in two processes, a long file picked up last is the tail.
LONGEST_FIRST = ("tests/test_soak.py", "tests/test_lab_interrupt.py", "tests/test_lab_rollout.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a rank, the collection order stays
