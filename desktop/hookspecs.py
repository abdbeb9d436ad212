"""Every hook a Bondscope plugin can implement, and the shapes of what plugins register.

Hooks use the "register callback" style of simonw/llm: the host passes `register` and a plugin
calls it once per thing it provides. Built-in plugins (in `bondscope.plugins`) use exactly these
hooks; docs/plugins.md walks through writing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import pluggy
from bondscope.domain import Step, Trace

hookspec = pluggy.HookspecMarker("bondscope")
hookimpl = pluggy.HookimplMarker("bondscope")


@runtime_checkable
class Importer(Protocol):
    """Reads traces from a file or folder.

    `read` yields Trace objects one at a time (stream large files) and raises
    `bondscope.InputError` naming the line and field for bad input. A Trace without `steps` is
    segmented by the import service; set `trace.line` so later validation errors can name the line.
    An importer may also set `annotator_kinds = {"name": "model"}` for annotators that are not
    people (names starting with `model:` are models anyway).
    """

    name: str
    description: str

    def detect(self, path: Path) -> bool: ...

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]: ...


@runtime_checkable
class Segmenter(Protocol):
    """Splits the thinking part `text[region[0]:region[1]]` into ordered, non-overlapping steps.

    `given` holds the spans the trace was imported with (None if it had none).
    """

    name: str
    description: str

    def segment(
        self, text: str, region: tuple[int, int], given: list[Step] | None
    ) -> list[Step]: ...


@runtime_checkable
class Exporter(Protocol):
    """Writes traces (with their current steps, labels and bonds) to `out`."""

    name: str
    description: str
    default_suffix: str

    def export(self, traces: Iterable[Trace], out: Path) -> None: ...


Register = Callable[[object], None]


@hookspec
def register_importers(register: Register) -> None:
    """Call `register(importer)` for each Importer this plugin provides."""


@hookspec
def register_segmenters(register: Register) -> None:
    """Call `register(segmenter)` for each Segmenter this plugin provides."""


@hookspec
def register_exporters(register: Register) -> None:
    """Call `register(exporter)` for each Exporter this plugin provides."""


@hookspec
def register_commands(cli) -> None:  # noqa: ANN001 - a click.Group; typed loosely to keep click optional here
    """Add click commands to the `bondscope` command line."""
