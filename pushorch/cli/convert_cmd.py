"""`pushorch convert`: print the service playbook that a compose project or Kubernetes manifests stand for."""

from __future__ import annotations

import click

from pushorch.cli.app import load_context
from pushorch.cli.compose_opts import compose_options
from pushorch.report import print_text


@click.command()
@compose_options
@click.argument("files", nargs=-1, required=True, type=click.Path())
def convert(files: tuple[str, ...]) -> int:
    """Print the playbook FILES (compose files, merged in order; or Kubernetes manifests) stand for
    (exit 3 on bad input)."""
    from pushorch.load.convert import playbook_text

    print_text(playbook_text(files, load_context()))
    return 0
