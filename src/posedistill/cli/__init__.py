"""The ``posedistill`` command line: thin commands that call the library.

Every subcommand lives in its own module here and is registered in ``_COMMANDS``. A user's mistake
(:class:`~posedistill.errors.PosedistillError`) is printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import PosedistillError

# (module, attribute) of each subcommand, in the order `posedistill --help` lists them.
_COMMANDS: list[tuple[str, str]] = [
    ("profile_cmd", "profile"),
    ("train_cmd", "train"),
    ("train_cmd", "distill"),
    ("finder_cmd", "train_finder"),
    ("evaluate_cmd", "evaluate"),
    ("quickstart_cmd", "quickstart"),
    ("data_cmd", "data"),
    ("predict_cmd", "predict"), ("export_cmd", "export"), ("bench_cmd", "bench"),
    ("report_cmd", "report"),
    ("serve_cmd", "serve"),
]


_ARGV_KEY = "posedistill.argv"


def command_line() -> list[str]:
    """The command line of the running ``posedistill`` command (recorded in run files), as the user typed it."""
    return list(click.get_current_context().meta.get(_ARGV_KEY) or ["posedistill", *sys.argv[1:]])


class _Group(click.Group):
    """Click group that turns library errors into one line on stderr, never a traceback, and remembers the
    command line (:func:`command_line`)."""

    def make_context(self, info_name, args, parent=None, **extra):
        argv = ["posedistill", *args]
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[_ARGV_KEY] = argv
        return ctx

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PosedistillError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="posedistill")
def main() -> None:
    """posedistill: fast 2D human pose estimation by Fast Pose Distillation (Zhang et al., CVPR 2019)."""


for _module, _attr in _COMMANDS:
    main.add_command(getattr(importlib.import_module(f"{__name__}.{_module}"), _attr))
