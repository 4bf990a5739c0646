"""Entry point for `python -m pushorch`."""

from pushorch.cli.main import main

main()
