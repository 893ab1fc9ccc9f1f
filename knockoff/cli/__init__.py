"""The `knockoff` command, thin over the library."""

from knockoff.cli.app import main

__all__ = ["main"]
