"""The `bondscope` command line: thin click commands over the same services the app uses.

`base` holds the group and shared helpers; each other module adds the commands of one area.
"""

from bondscope.cli import (  # noqa: F401 (registers commands)
    batch,
    classifier,
    data,
    gold,
    gui,
    structure,
    synthesis,
)
from bondscope.cli.base import cli, plugins
from bondscope.cli.structure import parse_sides

__all__ = ["cli", "main", "parse_sides"]


def main() -> None:
    plugins().register_commands(cli)  # a plugin that raises is listed by `bondscope plugins`
    cli()
