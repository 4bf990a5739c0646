"""The gate diagnosis' reading of what the host said (commands/diagnosis.py): pure, from canned text
in the formats `docker inspect` and /proc/PID/net/tcp{,6} print; the lab test makes each cause real."""

from __future__ import annotations

from pushorch.actions import Gate
from pushorch.commands.diagnosis import explain, listeners

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:2382 00000000000000000000000000000000:0000 0A 0
"""
HTTP = Gate(kind="http", port=8080, path="/health")


def _out(state: str, listen: str = "", logs: str = "", health: str = "") -> str:
    return f"{state}\n@@health\n{health}@@listen\n{listen}@@logs\n{logs}"


def test_listeners_read_ipv4_and_ipv6_listen_sockets_only() -> None:
    assert listeners(TCP + TCP6) == {8080: {"127.0.0.1"}, 3000: {"0.0.0.0"}, 9090: {"::1"}}


def test_each_cause_is_named() -> None:
    running = "running|0|false|0|4242|"
    said = explain(_out(running, TCP), HTTP)
    assert "the app listens on 8080 only on 127.0.0.1 inside the container" in said[1]
    said = explain(_out(running, TCP), Gate(kind="http", port=9999, path="/"))
    assert said[1] == "the app listens on 3000, 8080; the gate probes 9999"
    assert explain(_out(running, ""), HTTP)[1] == "it listens on no TCP port (the gate probes 8080)"
    said = explain(_out("exited|3|false|2|0|", logs="boom\n"), HTTP)
    assert said[:2] == ["container exited with code 3", "restarted 2 time(s) by its restart policy"]
    assert said[-1] == "last log lines:\n  boom"
    assert explain(_out("exited|137|true|0|0|"), HTTP)[0].startswith("killed for memory (OOM)")
    said = explain(_out("created|0|false|0|0|cannot bind: address in use"), HTTP)
    assert "Docker: cannot bind: address in use" in said and said[-1] == "no log output"
    said = explain(
        _out("running|0|false|0|1|", health='1 "wget: server returned error: HTTP/1.1 500"\n'), Gate(kind="docker")
    )
    assert "Docker's last health check: exit 1: 'wget: server returned error: HTTP/1.1 500'" in said
    assert explain(_out("Error: No such object: x"), HTTP)[0] == "container: Error: No such object: x"


def test_doctors_reading_of_a_hosts_answer() -> None:
    from pushorch.commands.doctor import parse

    out = (
        "@@id\n0\n@@sudo\nroot\n@@docker\n20.10.24\n@@info\noverlay2|/var/lib/docker\n"
        "@@df\n/var/lib/docker 1048576\n/var/lib/pushorch 2048\n@@clock\n1764950000.250\n"
        f"@@listen\n{TCP}@@proxies\n8080\n3000\n@@published\nweb 0.0.0.0:8080->80/tcp, :::8080->80/tcp\napi \n"
    )
    facts = parse(out)
    assert (facts.uid, facts.sudo, facts.docker, facts.driver) == ("0", "root", "20.10.24", "overlay2")
    assert facts.free_kib == {"/var/lib/docker": 1048576, "/var/lib/pushorch": 2048}
    assert facts.clock == 1764950000.25 and facts.published == {8080: {"web"}}
    assert set(facts.listening) == {8080, 3000} and facts.proxied == {8080, 3000}


def test_a_failed_docker_start_says_dockers_reason_not_only_its_summary() -> None:
    """The soak: a healing run failed 16 times with "Error: failed to start containers: cfg-a431a9ca"
    and nothing else; Docker's reason (a host port still held) is on the line before."""
    from pushorch.errors import CommandFailed

    stderr = (
        "Error response from daemon: driver failed programming external connectivity on endpoint cfg-1:"
        " Bind for 0.0.0.0:18304 failed: port is already allocated\n"
        "Error: failed to start containers: cfg-1\n"
    )
    said = str(CommandFailed("lab-1", "start cfg-1", 1, stderr))
    assert said.endswith("port is already allocated; Error: failed to start containers: cfg-1"), said
    assert str(CommandFailed("h", "x", 2, "one\ntwo\n")) == "h: x: exit 2: two"
