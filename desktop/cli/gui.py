"""The `gui` command: the desktop app (or an offscreen screenshot of it)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from bondscope.cli.base import (
    cli,
)


@cli.command()
@click.option(
    "--db",
    "db",
    type=click.Path(path_type=Path),
    default=None,
    help="project file (default: the last one, or the demo project)",
)
@click.option("--new", is_flag=True, help="create the --db project file if it does not exist")
@click.option("--trace", "trace", default=None, help="open this trace id")
@click.option(
    "--screenshot",
    type=click.Path(path_type=Path),
    default=None,
    help="render the window offscreen to this PNG and exit",
)
def gui(db, new, trace, screenshot):
    """Open the desktop app."""
    from bondscope.ui.app import run

    sys.exit(run(db=db, trace=trace, screenshot=screenshot, new=new))
