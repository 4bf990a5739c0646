"""The probe's parser on output captured from a real lab host."""

from __future__ import annotations

from pushorch.commands.probe import probe
from pushorch.facts import file_line, parse_probe
from tests.conftest import FIXTURES


def test_parse_captured_probe_output() -> None:
    seen = parse_probe("lab-1", (FIXTURES / "probe" / "lab-1.txt").read_text())
    assert (seen.os_id, seen.os_version, seen.package_manager, seen.systemd) == ("debian", "12", "apt-get", False)
    assert (seen.docker_installed, seen.docker_running) == (True, True)
    assert seen.consul_binary
    [nginx] = seen.containers
    assert (nginx.service, nginx.state, nginx.version) == ("nginx", "running", "1.14.2")
    assert nginx.ports == {"80/tcp": "0.0.0.0:80"} and nginx.name.startswith("nginx-")
    assert list(seen.images) == ["172.28.77.2:5000/pushorch/nginx-seed:1.14.2"]
    consul = seen.files["/etc/consul.d/pushorch-nginx.json"]
    assert (consul.exists, consul.kind, consul.mode, consul.owner, len(consul.sha256)) == (
        True,
        "file",
        "0640",
        "root",
        64,
    )
    assert "/nonexistent path" not in seen.files  # missing: the planner reads it as absent
    assert seen.files["/etc/with space"].kind == "directory"  # spaces and '|' survive the round trip
    odd = seen.files["/etc/with space/f|x"]
    assert (odd.kind, odd.mode, odd.sha256[:8]) == ("file", "0644", "98ea6e4f")


def test_file_lines() -> None:
    assert file_line("directory|755|root|root|/etc/app") is not None
    assert file_line("garbage") is None


def test_probe_quotes_every_path() -> None:
    argv = probe(["/etc/a b", "/x';rm -rf /;'"], ["img:1"])
    assert argv[:2] == ("sh", "-c") and "'/etc/a b'" in argv[2] and "'/x'\"'\"';rm -rf /;'\"'\"''" in argv[2]


def test_a_files_only_probe_forks_only_for_the_files() -> None:
    """No services and no docker task: no OS, Docker or Consul query is paid on the host."""
    script = probe(["/etc/app.conf"], [], docker=False)[2]
    assert "os-release" not in script and "docker" not in script and "/proc/net/tcp" not in script
    assert "stat -c" in script and "sha256sum" in script
    seen = parse_probe("h", "==pushorch:files==\n==pushorch:sha256==\n==pushorch:end==\n")
    assert not seen.docker_installed and not seen.files and seen.os_id == ""


def test_a_file_read_back_keeps_its_exact_bytes_mode_and_owner() -> None:
    import base64

    import pytest

    from pushorch.facts import saved_file
    from pushorch.observed import SavedFile

    data = b"\xff\x00\xfebin\n\x80"
    answer = "640 65534 65534\n" + base64.encodebytes(data).decode()
    assert saved_file("/etc/a", answer) == SavedFile("/etc/a", data, "640", "65534", "65534")
    assert saved_file("/etc/a", "absent\n") == SavedFile("/etc/a", None)
    with pytest.raises(ValueError, match="unexpected answer"):
        saved_file("/etc/a", "")
    with pytest.raises(ValueError, match="could not be read back"):
        saved_file("/etc/a", "644 0 0\n!!notbase64")


def test_read_back_in_a_real_shell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess

    from pushorch.commands.files import read_back
    from pushorch.facts import saved_file

    target = tmp_path / "f"
    target.write_bytes(b"\x00\x01\xffx" * 100)
    os.chmod(target, 0o604)
    done = subprocess.run(read_back(str(target)), capture_output=True, text=True, check=True)
    saved = saved_file(str(target), done.stdout)
    assert (saved.data, saved.mode, saved.uid) == (target.read_bytes(), "604", str(os.getuid()))
    assert subprocess.run(read_back(str(tmp_path / "none")), capture_output=True, text=True).stdout == "absent\n"
    assert subprocess.run(read_back(str(tmp_path)), capture_output=True, text=True).returncode == 4


def test_the_probe_reads_ungated_marks_in_a_real_shell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Containers a replacement started and no gate passed (an interrupted run's) reach the planner."""
    import subprocess

    from pushorch.commands.marks import UNGATED_DIR

    marks = tmp_path / "ungated"
    script = probe([], [])[2].replace(UNGATED_DIR, str(marks))
    empty = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert parse_probe("h", empty.stdout).ungated == frozenset()  # no directory yet: none
    marks.mkdir()
    for name in ("web-5df21fd1", "api-0a1b2c3d"):
        (marks / name).touch()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert parse_probe("h", done.stdout).ungated == {"web-5df21fd1", "api-0a1b2c3d"}


def test_the_probe_reads_rollback_marks_holds_and_owners_in_a_real_shell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from pushorch.commands import marks

    root = tmp_path / "lib"
    script = probe([], [])[2].replace(marks.ROOT, str(root))
    for argv in (
        marks.rolled_back("web-aaa", "web-bbb"),
        marks.hold("web", "0123abcd", "web-bbb"),
        marks.adopt("api", "/srv/b dir/site.yml"),
    ):
        subprocess.run([a.replace(marks.ROOT, str(root)) for a in argv], check=True)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    seen = parse_probe("h", done.stdout)
    assert seen.rolled_back == {"web-aaa"} and seen.holds == {"web": ("0123abcd", "web-bbb")}
    assert seen.owners == {"api": "/srv/b dir/site.yml"}


def test_the_probe_waits_while_dockerd_is_young_in_a_real_shell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The soak (seed 1 round 22): a run seconds after a host restart saw an instance stopped that the
    restarted dockerd started a moment later, beside the one the run put in its place. The probe waits
    until dockerd is DOCKERD_SETTLE's seconds old (here 2) before it looks at the containers."""
    import subprocess

    from pushorch.commands.probe import DOCKERD_SETTLE

    pid_file = tmp_path / "docker.pid"
    script = probe([], [])[2].replace("/var/run/docker.pid", str(pid_file)).replace("young=10", "young=2")
    assert DOCKERD_SETTLE.replace("/var/run/docker.pid", str(pid_file)).replace("young=10", "young=2") in script
    fresh = subprocess.Popen(["sleep", "30"])  # a dockerd that just started
    try:
        for pid, waits in ((fresh.pid, True), (1, False), (2**22 + 1, False)):  # young, old, gone
            pid_file.write_text(f"{pid}\n")
            done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
            assert ("DOCKERD_WAITED=" in done.stdout) == waits, (pid, done.stdout)
            # it waited before it looked: the wait's line comes before the containers' section
            if waits:
                assert done.stdout.index("DOCKERD_WAITED=") < done.stdout.index("==pushorch:containers==")
    finally:
        fresh.kill()
    pid_file.unlink()
    assert "DOCKERD_WAITED" not in subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
