"""The `facellm` command: one thin module per command group; each parses flags and calls the library."""

from __future__ import annotations

import sys

from facellm.cli import analyze, ask, data, dev, evaluate, faces, pipeline, serve, train  # noqa: F401 (they register)
from facellm.cli.root import EXIT_USER_ERROR, cli

__all__ = ["EXIT_USER_ERROR", "cli", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="facellm", standalone_mode=True))
