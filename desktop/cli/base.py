"""The command-line group and the helpers every command shares (progress, JSON output, errors)."""

from __future__ import annotations

import json
import sqlite3
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from bondscope import __version__
from bondscope.domain import InputError
from bondscope.jsonio import json_safe
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import Cancelled

if TYPE_CHECKING:  # the store pulls in sqlite-utils, which imports pandas: not for `--help`
    from bondscope.store import Store


@cache
def plugins() -> Plugins:
    return Plugins()


class TerminalProgress:
    """A tqdm bar on stderr; silent when stderr is not a terminal (CI logs, pipes).

    Use it as a context manager so the bar is closed however the command ends.
    """

    def __init__(self) -> None:
        self.bar: Any = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, label: str, total: int | None) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(
            total=total, desc=label, unit="item", file=sys.stderr, disable=None, leave=False
        )

    def advance(self, amount: int = 1, note: str = "") -> None:
        if self.bar is not None:
            self.bar.update(amount)
            if note:
                self.bar.set_postfix_str(note, refresh=False)

    def cancelled(self) -> bool:
        return False  # Ctrl+C raises KeyboardInterrupt, which rolls the transaction back

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def open_project(db: Path, create: bool = False) -> Store:
    from bondscope.store import Store

    return Store(db, create=create)


def known_annotator(store: Store, name: str | None) -> None:
    """An --annotator the project does not have is an error, not an empty result. (Services
    stay lenient: the app asks for the current annotator before they labeled anything.)"""
    if name is not None:
        from bondscope.services.structure import require_annotators

        require_annotators(store, [name])


def emit(data: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        for line in lines:
            click.echo(line)


def cell(value: Any) -> str:
    """A number for a text table: four significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        options[key.strip()] = value
    return options


class BondscopeGroup(click.Group):
    """Turns expected failures into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from bondscope.store import BUSY_TIMEOUT_S, StoreError

        try:
            return super().invoke(ctx)
        except (InputError, StoreError, PluginError, LookupError) as error:
            message = error.args[0] if isinstance(error, LookupError) else str(error)
            click.echo(f"error: {message}", err=True)
            sys.exit(1)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            click.echo(
                f"error: the project is busy: another process kept it locked for over "
                f"{BUSY_TIMEOUT_S} s; try again when it has finished",
                err=True,
            )
            sys.exit(1)
        except (KeyboardInterrupt, Cancelled):
            click.echo("cancelled; the project was left as it was", err=True)
            sys.exit(130)


class RenamedOption(click.Option):
    """An option whose spelling before #14 still works as a hidden alias: old scripts keep
    running, while `--help` and error messages show only the new name.

    (`--model` once meant three things: the LLM that wrote a trace, a pre-labeler, a model
    annotator; each has its own name now.)
    """

    def __init__(self, param_decls: list[str], *, old: tuple[str, ...] = (), **attrs: Any) -> None:
        super().__init__([*param_decls, *old], **attrs)
        self.old_names = old

    def shown(self) -> list[str]:
        return [name for name in self.opts if name not in self.old_names]

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        every = self.opts
        self.opts = self.shown()
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = every

    def get_error_hint(self, ctx: click.Context) -> str:
        return " / ".join(f"'{name}'" for name in self.shown())


def renamed_option(*param_decls: str, old: str, **attrs: Any) -> Any:
    """`click.option(*param_decls)` that also accepts `old`, hidden (see RenamedOption)."""
    return click.option(*param_decls, cls=RenamedOption, old=(old,), **attrs)


source_model_option = renamed_option(
    "--source-model",
    "model",
    old="--model",
    default=None,
    metavar="M",
    help="only traces written by this model (the traces' `model`)",
)

db_option = click.option(
    "--db", "db", type=click.Path(path_type=Path), required=True, help="project file (SQLite)"
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


def _parse_where(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple:
    from bondscope.metafilter import parse_where

    try:
        return tuple(parse_where(value) for value in values)
    except InputError as error:
        raise click.BadParameter(error.message, param_hint="--where") from None


where_option = click.option(
    "--where",
    "where",
    multiple=True,
    metavar="meta.KEY=VALUE",
    callback=_parse_where,
    help="only traces whose metadata KEY has VALUE, e.g. meta.correct=true (repeatable: all hold)",
)


@click.group(cls=BondscopeGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="bondscope")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Bondscope: label, measure and synthesize the behavior structure of long CoT traces.

    Without a command, opens the desktop app on the last project (or the demo project).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(cli.get_command(ctx, "gui"))
