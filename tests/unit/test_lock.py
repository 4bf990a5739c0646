"""Lock builders run in a real sh on a scratch directory; the local flock across two processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pushorch.errors import LockHeld
from pushorch.fleet import commands as lock_cmd
from pushorch.fleet.lock import LocalLock, describe


def _sh(argv: tuple[str, ...]) -> tuple[int, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def test_fleet_lock_acquire_hold_takeover_renew_release(tmp_path: Path) -> None:
    d = str(tmp_path / "var" / "lock")
    owner_a = json.dumps({"user": "a", "controller": "laptop", "pid": 1, "command": "pushorch apply"})
    assert _sh(lock_cmd.acquire(owner_a, "tok-a", 600, d)) == (0, "ACQUIRED\n")
    status, out = _sh(lock_cmd.acquire('{"user": "b"}', "tok-b", 600, d))
    assert status == 3 and out.startswith("HELD\n")
    assert describe(out.partition("\n")[2]).startswith("a@laptop pid 1 (pushorch apply)")
    assert _sh(lock_cmd.renew("tok-b", 600, d)) == (3, f"LOST\n{owner_a}\n")  # only the holder renews; who holds it
    assert _sh(lock_cmd.release("tok-b", d)) == (0, "NOT-OURS\n")  # ... or releases by token
    assert _sh(lock_cmd.status(d))[1].startswith("HELD\n")
    # An expired lock (ttl 0: expired at once) is taken over, and the old owner is reported.
    assert _sh(lock_cmd.acquire(owner_a, "tok-a", 0, d))[0] == 3  # still held by tok-a (600 s)
    Path(d, "expires").write_text("0\n")
    status, out = _sh(lock_cmd.acquire('{"user": "b"}', "tok-b", 600, d))
    assert status == 0 and out.startswith("TAKEN\n") and '"user": "a"' in out
    assert Path(d, "token").read_text() == "tok-b\n" and not Path(d + ".takeover").exists()
    assert _sh(lock_cmd.renew("tok-b", 600, d)) == (0, "RENEWED\n")
    assert _sh(lock_cmd.release("tok-b", d)) == (0, "RELEASED\n")
    assert _sh(lock_cmd.status(d)) == (0, "FREE\n")


def test_values_reach_the_lock_script_as_data(tmp_path: Path) -> None:
    d = str(tmp_path / "lock")
    hostile = '{"command": "x; touch ' + str(tmp_path / "pwned") + "; $(touch " + str(tmp_path / "pwned2") + ')"}'
    assert _sh(lock_cmd.acquire(hostile, "t'; rm -rf /; '", 60, d))[0] == 0
    assert Path(d, "owner.json").read_text() == hostile + "\n"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_local_lock_refuses_a_second_process_and_frees_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl,time; f=open({str(path)!r},'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeld, match="local lock"), LocalLock(path, wait=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    with LocalLock(path):  # the kernel dropped the dead holder's lock
        assert "pid" in path.read_text()


def test_a_fleet_state_write_cut_short_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The soak (seed 358149 round 97): a full disk during the fleet state's write left fleet.json.new."""
    lock_dir, state = tmp_path / "lock", tmp_path / "fleet.json"
    lock_dir.mkdir()
    (lock_dir / "token").write_text("t1")
    stub = tmp_path / "bin"
    stub.mkdir()
    # reading a file works; the write from stdin stops half way (the disk filled)
    (stub / "cat").write_text('#!/bin/sh\n[ $# -gt 0 ] && exec /bin/cat "$@"\nprintf half\nexit 1\n')
    (stub / "cat").chmod(0o755)
    argv = lock_cmd.write_state("t1", str(lock_dir), str(state))
    cut = subprocess.run(argv, input=b"{}", capture_output=True, env={"PATH": f"{stub}:/usr/bin:/bin"}, check=False)
    assert cut.returncode != 0 and b"WRITTEN" not in cut.stdout
    assert not state.exists() and not Path(f"{state}.new").exists()
    done = subprocess.run(argv, input=b"{}", capture_output=True, check=False)
    assert done.returncode == 0 and state.read_text() == "{}"
