"""The `bondscope` command line: thin click commands over the same services the app uses.

`base` holds the group and shared helpers; each other module adds the commands of one area.
"""

from bondscope.cli import batch, classifier, data, gui, structure, synthesis  # noqa: F401 (registers commands)
from bondscope.cli.base import cli, json_safe, plugins
from bondscope.cli.structure import parse_sides

__all__ = ["cli", "json_safe", "main", "parse_sides"]


def main() -> None:
    plugins().pm.hook.register_commands(cli=cli)
    cli()
