"""The ``contactsim`` Typer app: one-line usage errors, and every command registered.

Each command lives in its own module of ``simulator.cli`` and imports only
``simulator.cli.helpers``; this module imports the commands and registers them, in the
order ``contactsim --help`` lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from simulator.cli import check, compare, params, power, report, robust, run, strategies, sweep
from simulator.cli.helpers import err_console
from simulator.experiments.cells import simulator_version

try:  # Typer 0.2x vendors click and raises its own copy of click's exceptions.
    from typer._click import exceptions as click_exceptions
except ImportError:  # older Typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]


def one_line_message(text: str) -> str:
    """``text`` on one line: click wraps some messages and appends suggestions."""
    return " ".join(text.split())


def usage_error_line(exc: click_exceptions.UsageError) -> str:
    """A usage error as ``error: <message> (see <command> --help)``."""
    message = one_line_message(exc.format_message())
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exceptions.MissingParameter) and getattr(param, "help", None):
        message += f" ({one_line_message(param.help)})"  # type: ignore[union-attr]
    # Some parser errors (an option without its value) come without the command.
    command = f"{exc.ctx.command_path} " if exc.ctx is not None else ""
    return f"error: {message} (see {command}--help)"


class OneLineErrors(TyperGroup):
    """The ``contactsim`` group: command-line usage errors are one line and exit code 2.

    Typer's own reporting is a multi-line box; the group runs the commands with
    ``standalone_mode=False`` so that click's exceptions reach us instead, and exits with
    the code a command gave (``typer.Exit``). Being the group's ``main``, this covers the
    console script, ``python -m simulator`` and Typer's test runner alike.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            # Returns what the command returned (None) or the code of a ``typer.Exit``.
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, windows_expand_args=windows_expand_args,
                                **extra)
        except click_exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                # ``contactsim`` alone: the help was the answer (Typer has printed it).
                help_text = exc.format_message()
                if help_text.strip():
                    typer.echo(help_text)
            else:
                err_console.print(usage_error_line(exc), markup=False, highlight=False,
                                  soft_wrap=True)
            code = exc.exit_code
        except click_exceptions.ClickException as exc:
            err_console.print(f"error: {one_line_message(exc.format_message())}",
                              markup=False, highlight=False, soft_wrap=True)
            code = exc.exit_code
        except typer.Abort:
            err_console.print("aborted", markup=False, highlight=False)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # -h everywhere: click hands the setting down to every command's context.
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Simulate contact strategies for delinquent consumer-credit borrowers.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"contactsim {simulator_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="print the version of contactsim and exit")] = False,
) -> None:
    """Simulate contact strategies for delinquent consumer-credit borrowers."""


# In the order ``contactsim --help`` lists them.
app.command("run")(run.run_command)
app.command("params")(params.params_command)
app.command("check")(check.check_command)
app.command("compare")(compare.compare_command)
app.command("report")(report.report_command)
app.command("strategies")(strategies.strategies_command)
app.command("sweep")(sweep.sweep_command)
app.command("robust")(robust.robust_command)
app.command("power")(power.power_command)


def main() -> None:
    """Console-script entry point."""
    app()
