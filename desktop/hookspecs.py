"""Every hook a Bondscope plugin can implement, and the shapes of what plugins register.

Hooks use the "register callback" style of simonw/llm: the host passes `register` and a plugin
calls it once per thing it provides. Built-in plugins (in `bondscope.plugins`) use exactly these
hooks; docs/plugins.md walks through writing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy
from bondscope.domain import Step, Trace

if TYPE_CHECKING:
    import numpy as np

hookspec = pluggy.HookspecMarker("bondscope")
hookimpl = pluggy.HookimplMarker("bondscope")


@runtime_checkable
class Importer(Protocol):
    """Reads traces from a file or folder.

    `read` yields Trace objects one at a time (stream large files) and raises
    `bondscope.InputError` naming the line and field for bad input. A Trace without `steps` is
    segmented by the import service; set `trace.line` so later validation errors can name the line.
    An importer may also set `annotator_kinds = {"name": "model"}` for annotators that are not
    people (names starting with `model:` are models anyway). `detect` may take the `-o` options as
    a second argument (`detect(path, options)`), e.g. to claim a file by a field the user named;
    it returns True only for files it can read, since a path two importers claim is an error.
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
    """Writes traces (with their current steps, labels and bonds) to `out`.

    A file exporter may also define `recognizes(path) -> bool`, True when `path` looks like its own
    output: only then may `--overwrite` replace an existing file (folders carry a manifest)."""

    name: str
    description: str
    default_suffix: str

    def export(self, traces: Iterable[Trace], out: Path) -> None: ...


@runtime_checkable
class Labeled(Protocol):
    """One selection of labeled step sequences, as the structure service hands it to a metric.

    Counts are pooled over every trace of the selection (paper.md §8 B1) and computed in SQL on
    first use, so a metric that needs only the marginals never pays for the transitions. Arrays
    follow `bondscope.BEHAVIORS` (N, D, R, E); in matrices rows are "from", columns "to".
    """

    name: str  # what was selected, e.g. "model=DeepSeek-R1"
    traces: int

    def behavior_counts(self) -> np.ndarray: ...

    def transition_counts(self) -> np.ndarray: ...

    def transition_matrix(self, alpha: float = 0.0) -> np.ndarray: ...

    def stationary(self) -> np.ndarray | None: ...


@dataclass
class MetricResult:
    """A metric's answer: `data` for --json (JSON-able), `columns` + `rows` for CSV and tables;
    `text`, when given, is how a terminal shows it instead of the rows (e.g. a grid)."""

    data: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    text: list[str] | None = None


@runtime_checkable
class Metric(Protocol):
    """Measures one selection of labeled sequences (`bondscope metrics NAME`)."""

    name: str
    description: str

    def compute(self, labeled: Labeled) -> MetricResult: ...


@dataclass
class StepPrediction:
    """A pre-labeler's guess for one step: the behavior, its probability, and all four."""

    behavior: str
    confidence: float | None  # None when the pre-labeler cannot say (e.g. an LLM without scores)
    probabilities: dict[str, float] | None = None


@runtime_checkable
class Prelabeler(Protocol):
    """Suggests a behavior for every step; stored as annotator `model:{name}@{version}`.

    `predict` gets whole traces (steps in context) in batches, so a model can batch across traces,
    and returns one list of predictions per trace, one prediction per step, in step order.
    """

    name: str
    description: str
    version: str

    def predict(self, traces: Sequence[Trace]) -> list[list[StepPrediction]]: ...


@runtime_checkable
class ChatClient(Protocol):
    """One configured connection to a chat model (see `LLMBackend`)."""

    model: str

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str: ...


@runtime_checkable
class LLMBackend(Protocol):
    """Creates chat clients for a kind of server (e.g. any OpenAI-compatible endpoint).

    Keys come from the environment (`api_key_env`); a client never writes them anywhere.
    """

    name: str
    description: str

    def client(self, base_url: str, model: str, **options: Any) -> ChatClient: ...


class LLMError(RuntimeError):
    """A chat request failed for good (retries spent, bad answer, refused); never holds a key."""


@runtime_checkable
class Synthesizer(Protocol):
    """Writes one reasoning step per sampled behavior (MOLE-SYN, paper.md §4).

    `templates(folder)` loads the per-behavior prompt templates (the built-in ones when folder is
    None) so a run can store them and resume with exactly the same prompts; `messages` renders
    the chat request for the next step; `final_answer` returns the answer when a step gives one
    (which ends the walk), else None.
    """

    name: str
    description: str

    def templates(self, folder: Path | None) -> dict[str, str]: ...

    def messages(
        self, templates: dict[str, str], question: str, steps: Sequence[str], behavior: str
    ) -> list[dict[str, str]]: ...

    def final_answer(self, text: str) -> str | None: ...


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
def register_metrics(register: Register) -> None:
    """Call `register(metric)` for each Metric this plugin provides."""


@hookspec
def register_prelabelers(register: Register) -> None:
    """Call `register(prelabeler)` for each Prelabeler this plugin provides."""


@hookspec
def register_llm_backends(register: Register) -> None:
    """Call `register(backend)` for each LLMBackend this plugin provides."""


@hookspec
def register_synthesizers(register: Register) -> None:
    """Call `register(synthesizer)` for each Synthesizer this plugin provides."""


@hookspec
def register_commands(cli) -> None:  # noqa: ANN001 - a click.Group; typed loosely to keep click optional here
    """Add click commands to the `bondscope` command line."""
