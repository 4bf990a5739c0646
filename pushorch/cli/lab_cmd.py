"""`pushorch lab up | down | status`: the built-in lab cluster."""

from __future__ import annotations

from pathlib import Path

import click

from pushorch.report import print_json, print_table, say


def _lab(directory: str | None, subnet: str | None = None):  # type: ignore[no-untyped-def]
    from pushorch.lab.cluster import Lab, default_dir

    return Lab(Path(directory) if directory else default_dir(), subnet)


dir_option = click.option("--dir", "directory", metavar="DIR", help="Where the lab keeps its files (default .lab).")


@click.group()
def lab() -> None:
    """A real multi-host cluster on this machine: containers with sshd and their own dockerd."""


@lab.command()
@click.option("--hosts", "count", type=click.IntRange(1, 200), default=3, show_default=True, help="Hosts with Docker.")
@click.option("--bare", type=click.IntRange(0, 50), default=0, show_default=True, help="Hosts without Docker.")
@click.option(
    "--edges", type=click.IntRange(0, 9), default=0, show_default=True, help="Ingress hosts (group edge, bare)."
)
@click.option("--subnet", help="The lab network's /24 (default: a free one in 172.28.100-249.0/24).")
@click.option(
    "--secure-consul",
    is_flag=True,
    help="Consul agents with ACLs (default deny; token in DIR/consul-token) and HTTPS only (8501, the lab's CA).",
)
@dir_option
def up(count: int, bare: int, edges: int, subnet: str | None, secure_consul: bool, directory: str | None) -> int:
    """Bring the lab up (idempotent); writes DIR/inventory.yml."""
    inventory = _lab(directory, subnet).up(count, bare, say, secure_consul=secure_consul, edges=edges)
    say(f"inventory: {inventory}")
    return 0


@lab.command()
@click.option("--images", is_flag=True, help="Also remove the cached host images.")
@dir_option
def down(images: bool, directory: str | None) -> int:
    """Remove every container, volume, network and key the lab created."""
    _lab(directory).down(say, images=images)
    return 0


@lab.command()
@click.option("--json", "as_json", is_flag=True)
@dir_option
def status(as_json: bool, directory: str | None) -> int:
    """List lab hosts, their addresses and health."""
    rows = _lab(directory).status()
    if as_json:
        print_json(rows)
    else:
        print_table(["host", "address", "state", "health"], rows)
    return 0
