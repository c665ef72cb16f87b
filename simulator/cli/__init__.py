"""The ``contactsim`` command line: the Typer app (``simulator.cli.app``), shared helpers
(``simulator.cli.helpers``) and one module per command."""

from simulator.cli.app import app, main

__all__ = ["app", "main"]
