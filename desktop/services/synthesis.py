"""MOLE-SYN (paper.md §4, §8-D): random-walk a behavior graph and let an instruction LLM write
one step per sampled behavior; then measure how faithful the synthesized corpus is.

Crash safety: a run is planned first (run row + one `synthesis_items` row per trace, each with its
whole walk sampled up front from a seeded Generator), and every generated step is committed to
`synthesis_steps` as soon as it arrives. Rerunning with the run id continues each trace from its
last stored step, with the prompts, graph and walk stored in the run, so an interrupted run ends
up exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from bondscope import llm_defaults
from bondscope.domain import BEHAVIORS, InputError, Step, Trace, validate_trace
from bondscope.hookspecs import ChatClient, LLMError, Synthesizer
from bondscope.jsonio import iter_jsonl, json_safe
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import Cancelled, NullProgress, Progress
from bondscope.services.importing import ImportReport, TraceWriter
from bondscope.services.prelabeling import annotator_name, label_traces
from bondscope.services.structure import (
    Selection,
    corpus_matrix,
    pearson,
    preset,
    stationary,
    transition_counts,
    transition_matrix,
)
from bondscope.store import Store, now

RUN_KIND = "synthesize"
FIDELITY_RUN_KIND = "fidelity"
EFFECTIVE_ISOMER_R = 0.9  # paper.md §3.3, §8 D6
# Tried in this order when no pre-labeler is named: the shipped ONNX classifier, then the
# cue-word baseline (a run still gets a report where no model is installed).
PRELABELER_PREFERENCE = ("bondscope-minilm", "keywords")
EMPTY_ANSWER_TRIES = 3
INDEX = {b: i for i, b in enumerate(BEHAVIORS)}


class SynthesisError(LookupError):
    """A synthesis run cannot start or continue as asked (unknown run, other model, ...)."""


# -- the target graph and the walk -----------------------------------------------------------------


@dataclass(frozen=True)
class TargetGraph:
    """The 4x4 row-stochastic P(next | current) to reproduce, and where it came from."""

    P: np.ndarray
    origin: str

    def as_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "P": np.round(self.P, 10).tolist()}


def graph_from_preset(preset_id: str) -> TargetGraph:
    found = preset(preset_id)
    return TargetGraph(found.P, f"preset {found.id}")


def graph_from_corpus(store: Store, selection: Selection, alpha: float = 0.0) -> TargetGraph:
    """P counted over a labeled corpus (any filter of structure.Selection), smoothed by alpha;
    refused when a behavior is never left and alpha is 0 (a walk could get stuck there)."""
    matrix = corpus_matrix(store, selection, alpha)
    return TargetGraph(
        matrix.P,
        f"corpus {store.path.name} ({matrix.selection.describe()}, {matrix.counts.traces} traces)",
    )


def first_behavior(start: str, P: np.ndarray, rng: np.random.Generator) -> str:
    """The walk's first state: a behavior, or "pi" for a draw from P's stationary distribution."""
    if start in BEHAVIORS:
        return start
    if start != "pi":
        raise SynthesisError(f"start must be one of {', '.join(BEHAVIORS)} or pi, got {start!r}")
    pi = np.clip(stationary(P), 0, None)
    return BEHAVIORS[rng.choice(4, p=pi / pi.sum())]


def random_walk(P: np.ndarray, first: str, length: int, rng: np.random.Generator) -> str:
    """`length` behaviors: `first`, then each drawn from P(. | previous)."""
    cumulative = np.cumsum(np.asarray(P, dtype=float), axis=1)
    cumulative /= cumulative[:, -1:]
    draws = rng.random(max(0, length - 1))
    state = INDEX[first]
    walk = [state]
    for u in draws:
        state = min(int(np.searchsorted(cumulative[state], u, side="right")), 3)
        walk.append(state)
    return "".join(BEHAVIORS[s] for s in walk[:length])


def walk_counts(walks: list[str]) -> np.ndarray:
    """Transition counts[from, to] over behavior strings (one per trace)."""
    counts = np.zeros((4, 4), dtype=np.int64)
    for walk in walks:
        for a, b in zip(walk, walk[1:], strict=False):
            counts[INDEX[a], INDEX[b]] += 1
    return counts


def estimate_tokens(text: str) -> int:
    """About four characters per token: enough for a cap, no tokenizer needed."""
    return max(1, math.ceil(len(text) / 4))


# -- answers -------------------------------------------------------------------------------------

_LATEX = [
    (re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\sqrt\{([^{}]*)\}"), r"sqrt(\1)"),
    (re.compile(r"\\(?:cdot|times)"), "*"),
    (re.compile(r"\\pi"), "pi"),
]


def normalize_answer(answer: str) -> str:
    """Drop what never changes an answer's value: spaces, $, \\left/\\right, \\text, a final dot."""
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer)
    text = re.sub(r"\\(left|right|!|,|;|:)|\$|\s", "", text)
    return text.rstrip(".")


def answers_match(predicted: str | None, gold: str) -> bool:
    """Equal after normalizing, or (with sympy installed) symbolically equal."""
    if predicted is None:
        return False
    a, b = normalize_answer(predicted), normalize_answer(gold)
    if a == b:
        return True
    if importlib.util.find_spec("sympy") is None or max(len(a), len(b)) > 200:
        return False
    return _sympy_equal(a, b)


def _sympy_equal(a: str, b: str) -> bool:
    from sympy import simplify
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = (*standard_transformations, implicit_multiplication_application)

    def parse(text: str) -> Any:
        for pattern, replacement in _LATEX:
            for _ in range(4):  # nested \frac{\frac{..}{..}}{..} unwind from the inside out
                text = pattern.sub(replacement, text)
        text = text.replace("^", "**").replace("{", "(").replace("}", ")")
        return parse_expr(text, transformations=transformations, evaluate=True)

    try:
        return bool(simplify(parse(a) - parse(b)) == 0)
    except Exception:  # sympy raises many types on text that is not math; then they differ
        return False


# -- planning a run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    question: str
    answer: str | None = None
    id: str | None = None


def read_questions(path: Path) -> list[Question]:
    """JSONL, one {"question": ..., "answer": optional gold, "id": optional} per line."""
    found = []
    for line, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise InputError("must be a JSON object", path, line)
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError("must be a non-empty string", path, line, "question")
        answer = record.get("answer")
        if answer is not None and not isinstance(answer, str | int | float):
            raise InputError("must be a string or a number", path, line, "answer")
        found.append(Question(question, None if answer is None else str(answer), record.get("id")))
    if not found:
        raise InputError("holds no questions", path)
    return found


@dataclass(frozen=True)
class Connection:
    """Which chat server writes the steps; the key stays in the environment (`api_key_env`)."""

    base_url: str
    model: str
    backend: str = llm_defaults.BACKEND
    options: dict[str, Any] = field(default_factory=dict)  # timeout, max_retries, concurrency...


@dataclass(frozen=True)
class SynthesisSettings:
    """Everything that shapes the corpus; stored in the run so a resume uses the same."""

    n: int | None = None  # traces to write; default one per question (questions are cycled)
    start: str = llm_defaults.START  # a behavior, or "pi"
    seed: int = llm_defaults.SEED
    max_steps: int = llm_defaults.MAX_STEPS
    max_tokens: int = llm_defaults.MAX_TOKENS  # estimated tokens of the whole trace
    step_tokens: int = llm_defaults.STEP_TOKENS  # max_tokens of each request
    temperature: float = llm_defaults.TEMPERATURE
    top_p: float = llm_defaults.TOP_P
    synthesizer: str = "mole-syn"
    prompts: str | None = None  # a folder of templates instead of the built-in ones
    source: str = "mole-syn"  # traces get source "{source}:{run id}"


def plan_run(
    store: Store,
    plugins: Plugins,
    questions: list[Question],
    graph: TargetGraph,
    settings: SynthesisSettings,
    connection: Connection,
) -> int:
    """Create the run and its items (walks sampled up front); returns the run id."""
    if settings.max_steps < 1 or settings.max_tokens < 1:
        raise SynthesisError("max_steps and max_tokens must be at least 1")
    synthesizer: Synthesizer = plugins.get("synthesizer", settings.synthesizer)
    backend = plugins.get("llm_backend", connection.backend)
    # Fail before planning, not after: a bad URL or a key pasted as api_key_env is refused here.
    backend.client(connection.base_url, connection.model, **connection.options)
    folder = Path(settings.prompts) if settings.prompts else None
    templates = plugins.call("synthesizer", synthesizer.name, synthesizer.templates, folder)
    n = settings.n if settings.n is not None else len(questions)
    if n < 1:
        raise SynthesisError("nothing to synthesize: n must be at least 1")
    params = {
        "settings": asdict(settings),
        "graph": graph.as_json(),
        "prompts": templates,
        "prompts_sha256": prompts_hash(templates),
        "backend": connection.backend,
        "model": connection.model,
        "base_url": _public(connection.base_url),
        "options": {k: v for k, v in connection.options.items() if k != "api_key"},
        "questions": len(questions),
        "n": n,
    }
    rows = []
    for item in range(n):
        question = questions[item % len(questions)]
        rng = np.random.default_rng([settings.seed, item])
        first = first_behavior(settings.start, graph.P, rng)
        walk = random_walk(graph.P, first, settings.max_steps, rng)
        rows.append((item, question.question, question.answer, walk))
    with store.transaction():
        run_id = store.start_run(RUN_KIND, params)
        store.conn.executemany(
            "INSERT INTO synthesis_items (run_id, item, question, gold, walk) VALUES (?,?,?,?,?)",
            [(run_id, *row) for row in rows],
        )
    return run_id


def prompts_hash(templates: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(templates, sort_keys=True).encode("utf-8")).hexdigest()


def _public(url: str) -> str:
    """The URL without credentials, query or fragment (a key may hide there), for provenance."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


THINK_BLOCK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def split_reasoning(reply: str) -> tuple[str, str]:
    """(step text, reasoning): a reasoning model's `<think>` blocks (and a reasoning field the
    backend read, `ChatReply.reasoning`) are kept apart, never stored inside the trace."""
    parts = [getattr(reply, "reasoning", "") or ""]
    text = str(reply)
    if "</think>" in text and "<think>" not in text.split("</think>", 1)[0]:
        head, text = text.split("</think>", 1)  # a server that dropped the opening tag
        parts.append(head)
    parts += [m.group(1) for m in THINK_BLOCK.finditer(text)]
    text = THINK_BLOCK.sub("", text)
    reasoning = "\n\n".join(p.strip() for p in parts if p.strip())
    return text.strip(), reasoning


# -- running (and resuming) a run ----------------------------------------------------------------


@dataclass
class SynthesisReport:
    run_id: int
    traces: int = 0  # traces of the run stored so far
    items: int = 0
    steps: int = 0  # steps stored for the run (all sessions)
    generated: int = 0  # chat answers received in this session
    resumed_steps: int = 0  # steps found stored when this session started
    stops: dict[str, int] = field(default_factory=dict)
    checked: int = 0
    correct: int = 0
    status: str = "running"


@dataclass
class _Item:
    item: int
    question: str
    gold: str | None
    walk: str
    texts: list[str]
    tokens: int
    empty_answers: int = 0
    reasoning: list[str] = field(default_factory=list)  # per step, "" when there was none


def run_synthesis(
    store: Store,
    plugins: Plugins,
    run_id: int,
    connection: Connection,
    progress: Progress | None = None,
) -> SynthesisReport:
    """Generate every missing step of the run, storing each as it arrives; finish its traces.

    On a server that stays down (retries spent) the steps in flight are still stored, the run is
    marked failed and LLMError is raised; on Ctrl+C or cancel it is marked cancelled. Either
    way, calling this again with the run id continues where it stopped.
    """
    progress = progress or NullProgress()
    params = _run_params(store, run_id)
    if connection.model != params["model"]:
        raise SynthesisError(
            f"run {run_id} was synthesized with model {params['model']!r}, not "
            f"{connection.model!r}; resume it with the same model"
        )
    settings = SynthesisSettings(**params["settings"])
    synthesizer: Synthesizer = plugins.get("synthesizer", settings.synthesizer)
    backend = plugins.get("llm_backend", params["backend"])
    client: ChatClient = backend.client(connection.base_url, connection.model, **connection.options)
    templates = params["prompts"]
    items = _load_items(store, run_id)
    report = SynthesisReport(run_id, items=len(items))
    report.resumed_steps = sum(len(item.texts) for item in items)
    with store.transaction():
        store.claim_run(run_id)
    writer = _Finisher(store, plugins, run_id, params, settings, synthesizer)
    finished_before = store.count(
        "SELECT COUNT(*) FROM synthesis_items WHERE run_id = ? AND stop IS NOT NULL", (run_id,)
    )
    progress.start("synthesizing", len(items) + finished_before)
    progress.advance(finished_before)
    pending = []
    for item in items:
        if writer.done(item):
            writer.finish(item)
            progress.advance(1)
        else:
            pending.append(item)
    request = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.step_tokens,
    }
    concurrency = int(connection.options.get("concurrency", llm_defaults.CONCURRENCY))
    failure: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="mole-syn")
    in_flight: dict[Future[str], _Item] = {}

    def submit(item: _Item) -> None:
        behavior = item.walk[len(item.texts)]
        messages = synthesizer.messages(templates, item.question, item.texts, behavior)
        in_flight[pool.submit(client.chat, messages, **request)] = item

    try:
        for item in pending[:concurrency]:
            submit(item)
        queue = pending[concurrency:]
        while in_flight:
            finished, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            if failure is None and progress.cancelled():
                failure = Cancelled()
            for future in finished:
                item = in_flight.pop(future)
                try:
                    text, reasoning = split_reasoning(future.result())
                except LLMError as error:
                    failure = failure or error
                    continue
                except Exception as error:  # a bug in the backend plugin, not a server hiccup
                    owner = plugins.owner("llm_backend", params["backend"])
                    failure = failure or plugins.disable(owner, error)
                    continue
                report.generated += 1
                if not text:
                    item.empty_answers += 1
                    if item.empty_answers >= EMPTY_ANSWER_TRIES:
                        failure = failure or LLMError(
                            f"the model answered with empty text {EMPTY_ANSWER_TRIES} times in "
                            f"a row (item {item.item}, step {len(item.texts)})"
                        )
                elif writer.store_step(item, text, reasoning):
                    writer.finish(item)
                    progress.advance(1, f"{report.generated} steps generated")
                    if failure is None and queue:
                        submit(queue.pop(0))
                    continue
                else:
                    progress.advance(0, f"{report.generated} steps generated")
                if failure is None:
                    submit(item)
    except BaseException as error:  # Ctrl+C, or a bug: keep what is stored, say how it ended
        close = getattr(client, "close", None)
        if close is not None:
            close()  # requests in flight end now, so the process can exit
        pool.shutdown(wait=False, cancel_futures=True)
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        _set_status(store, run_id, status, report)
        raise
    pool.shutdown(wait=True)
    if failure is not None:
        _set_status(
            store, run_id, "cancelled" if isinstance(failure, Cancelled) else "failed", report
        )
        raise failure
    _set_status(store, run_id, "done", report)
    return report


def _run_params(store: Store, run_id: int) -> dict[str, Any]:
    row = store.conn.execute("SELECT kind, params FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[0] != RUN_KIND:
        raise SynthesisError(f"run {run_id} is not a synthesis run of this project")
    return json.loads(row[1])


def _load_items(store: Store, run_id: int) -> list[_Item]:
    """The run's unfinished items with the steps already stored for them."""
    items = []
    for item, question, gold, walk in store.conn.execute(
        "SELECT item, question, gold, walk FROM synthesis_items "
        "WHERE run_id = ? AND stop IS NULL ORDER BY item",
        (run_id,),
    ).fetchall():
        texts, tokens, reasoning = [], 0, []
        for text, n, thought in store.conn.execute(
            "SELECT text, tokens, reasoning FROM synthesis_steps WHERE run_id = ? AND item = ? "
            "ORDER BY idx",
            (run_id, item),
        ):
            texts.append(text)
            tokens += n
            reasoning.append(thought or "")
        items.append(_Item(item, question, gold, walk, texts, tokens, reasoning=reasoning))
    return items


def _set_status(store: Store, run_id: int, status: str, report: SynthesisReport) -> None:
    with store.transaction():
        conn = store.conn
        report.steps = store.count(
            "SELECT COUNT(*) FROM synthesis_steps WHERE run_id = ?", (run_id,)
        )
        report.traces = store.count(
            "SELECT COUNT(*) FROM synthesis_items WHERE run_id = ? AND trace_id IS NOT NULL",
            (run_id,),
        )
        report.stops = dict(
            conn.execute(
                "SELECT stop, COUNT(*) FROM synthesis_items WHERE run_id = ? AND stop IS NOT NULL "
                "GROUP BY stop",
                (run_id,),
            ).fetchall()
        )
        checked = [
            json.loads(meta)["mole_syn"].get("correct")
            for (meta,) in conn.execute(
                "SELECT meta FROM traces WHERE run_id = ? AND id IN "
                "(SELECT trace_id FROM synthesis_items WHERE run_id = ?)",
                (run_id, run_id),
            )
        ]
        report.checked = sum(c is not None for c in checked)
        report.correct = sum(c is True for c in checked)
        report.status = status
        summary = asdict(report)
        store.finish_run(run_id, status, summary)


class _Finisher:
    """Stores steps as they arrive and turns a finished item into a trace of the corpus."""

    def __init__(
        self,
        store: Store,
        plugins: Plugins,
        run_id: int,
        params: dict[str, Any],
        settings: SynthesisSettings,
        synthesizer: Synthesizer,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.run_id = run_id
        self.params = params
        self.settings = settings
        self.final_answer: Callable[[str], str | None] = synthesizer.final_answer

    def stop_reason(self, item: _Item) -> str | None:
        if item.texts and self.final_answer(item.texts[-1]) is not None:
            return "answer"
        if item.tokens >= self.settings.max_tokens:
            return "token_cap"
        if len(item.texts) >= self.settings.max_steps:
            return "step_cap"
        return None

    def done(self, item: _Item) -> bool:
        return self.stop_reason(item) is not None

    def store_step(self, item: _Item, text: str, reasoning: str = "") -> bool:
        """Commit one generated step; True when the item is now finished."""
        tokens = estimate_tokens(text)
        with self.store.transaction():
            self.store.conn.execute(
                "INSERT INTO synthesis_steps (run_id, item, idx, behavior, text, tokens, "
                "created_at, reasoning) VALUES (?,?,?,?,?,?,?,?)",
                (
                    self.run_id,
                    item.item,
                    len(item.texts),
                    item.walk[len(item.texts)],
                    text,
                    tokens,
                    now(),
                    reasoning or None,
                ),
            )
        item.texts.append(text)
        item.reasoning.append(reasoning)
        item.tokens += tokens
        return self.done(item)

    def finish(self, item: _Item) -> None:
        """Store the item's trace: `<think>` steps `</think>` answer, with its provenance."""
        stop = self.stop_reason(item)
        texts = item.texts[:-1] if stop == "answer" else item.texts
        answer_text = item.texts[-1] if stop == "answer" else ""
        answer = self.final_answer(answer_text) if answer_text else None
        text, spans = "<think>\n", []
        for i, step_text in enumerate(texts):
            if i:
                text += "\n\n"
            spans.append(Step(len(text), len(text) + len(step_text)))
            text += step_text
        text += "\n</think>\n\n" + answer_text
        params = self.params
        provenance = {
            "run": self.run_id,
            "item": item.item,
            "walk": item.walk[: len(texts)],
            "start": self.settings.start,
            "seed": self.settings.seed,
            "graph": params["graph"],
            "synthesizer": self.settings.synthesizer,
            "prompts_sha256": params["prompts_sha256"],
            "backend": params["backend"],
            "model": params["model"],
            "base_url": params["base_url"],
            "decoding": {
                "temperature": self.settings.temperature,
                "top_p": self.settings.top_p,
                "max_tokens": self.settings.step_tokens,
            },
            "stop": stop,
            "tokens": item.tokens,
            "gold": item.gold,
            "correct": None if item.gold is None else answers_match(answer, item.gold),
        }
        if any(item.reasoning):
            provenance["reasoning"] = item.reasoning  # per generated step, the answer last
        trace = Trace(
            id=f"{self.settings.source}-{self.run_id}-{item.item}",
            text=text,
            question=item.question,
            model=params["model"],
            source=f"{self.settings.source}:{self.run_id}",
            answer=answer or "",
            steps=spans,
            meta={"mole_syn": provenance},
        )
        validate_trace(trace)
        with self.store.transaction():
            writer = TraceWriter(
                self.store,
                self.plugins,
                self.plugins.get("segmenter", "given"),
                self.run_id,
                ImportReport(),
            )
            writer.add(trace, Path(trace.id))
            writer.flush()
            trace_id = self.store.conn.execute(
                "SELECT id FROM traces WHERE content_hash = ?", (trace.content_hash,)
            ).fetchone()[0]
            self.store.conn.execute(
                "UPDATE synthesis_items SET trace_id = ?, stop = ? WHERE run_id = ? AND item = ?",
                (trace_id, stop, self.run_id, item.item),
            )


# -- unfinished runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunProgress:
    """How far a synthesis run got: traces planned and finished, steps stored."""

    items: int
    finished: int
    steps: int


def run_progress(store: Store, run_id: int) -> RunProgress:
    items, finished = store.conn.execute(
        "SELECT COUNT(*), COUNT(trace_id) FROM synthesis_items WHERE run_id = ?", (run_id,)
    ).fetchone()
    steps = store.count("SELECT COUNT(*) FROM synthesis_steps WHERE run_id = ?", (run_id,))
    return RunProgress(items, finished, steps)


@dataclass(frozen=True)
class UnfinishedRun:
    """A synthesis run not marked done: crashed (running), cancelled or failed."""

    run_id: int
    status: str
    model: str
    base_url: str
    progress: RunProgress
    api_key_env: str
    concurrency: int

    def describe(self) -> str:
        return (
            f"run {self.run_id} ({self.status}): {self.progress.finished} of "
            f"{self.progress.items} traces, {self.progress.steps} steps stored; "
            f"model {self.model} at {self.base_url}"
        )


def unfinished_runs(store: Store) -> list[UnfinishedRun]:
    """Every synthesis run that can be resumed, newest first, with how far each got."""
    found = []
    for run_id, status, params in store.conn.execute(
        "SELECT id, COALESCE(status, 'running'), params FROM runs"
        " WHERE kind = ? AND COALESCE(status, '') != 'done' ORDER BY id DESC",
        (RUN_KIND,),
    ).fetchall():
        data = json.loads(params)
        options = data.get("options", {})
        found.append(
            UnfinishedRun(
                run_id,
                status,
                data["model"],
                data["base_url"],
                run_progress(store, run_id),
                options.get("api_key_env", llm_defaults.API_KEY_ENV),
                int(options.get("concurrency", llm_defaults.CONCURRENCY)),
            )
        )
    return found


# -- fidelity ------------------------------------------------------------------------------------


@dataclass
class FidelityReport:
    """Intended (walk) against measured (pre-labeled) behaviors of a synthesis run's steps."""

    run_id: int
    fidelity_run: int
    prelabeler: str
    annotator: str
    traces: int
    steps: int
    accuracy: float
    per_behavior: dict[str, dict[str, float | int]]
    confusion: list[list[int]]  # [intended][measured], BEHAVIORS order
    target: list[list[float]]
    measured: list[list[float]]
    intended: list[list[float]]  # what the walks actually did (sampling noise vs. the target)
    pearson_r: float  # target vs measured: the paper's structure similarity
    pearson_r_intended: float  # target vs intended
    effective_isomer: bool
    steps_per_trace: dict[str, float]
    answers: dict[str, int]


def choose_prelabeler(plugins: Plugins, name: str | None) -> list[str]:
    """The pre-labeler to use, then the fallbacks when none was named."""
    available = plugins.prelabelers()
    if name is not None:
        plugins.get("prelabeler", name)
        return [name]
    chosen = [n for n in PRELABELER_PREFERENCE if n in available]
    if not chosen:
        raise LookupError(
            "no pre-labeler to measure the synthesized steps with (tried "
            f"{', '.join(PRELABELER_PREFERENCE)}; available: {', '.join(available) or 'none'})"
        )
    return chosen


def fidelity(
    store: Store,
    plugins: Plugins,
    run_id: int,
    *,
    prelabeler: str | None = None,
    batch: int = 32,
    progress: Progress | None = None,
) -> FidelityReport:
    """Pre-label the run's steps (ordinary label events of a `fidelity` run), then compare."""
    progress = progress or NullProgress()
    params = _run_params(store, run_id)
    trace_ids = [
        row[0]
        for row in store.conn.execute(
            "SELECT trace_id FROM synthesis_items WHERE run_id = ? AND trace_id IS NOT NULL "
            "ORDER BY item",
            (run_id,),
        )
    ]
    if not trace_ids:
        raise SynthesisError(f"run {run_id} has no finished traces yet; run or resume it first")
    traces = [store.load_trace(trace_id, annotators=[]) for trace_id in trace_ids]
    candidates = choose_prelabeler(plugins, prelabeler)
    for position, name in enumerate(candidates):
        try:
            fidelity_run, annotator = _prelabel(
                store, plugins, name, run_id, trace_ids, batch, progress
            )
            break
        except PluginError:
            if position == len(candidates) - 1:
                raise
    intended_walks = [trace.meta["mole_syn"]["walk"] for trace in traces]
    measured = {
        (trace_id, step): behavior
        for trace_id, step, behavior in store.conn.execute(
            "SELECT trace_id, step, behavior FROM current_labels WHERE annotator = ? AND "
            "event_id IN (SELECT id FROM label_events WHERE run_id = ?)",
            (annotator, fidelity_run),
        )
    }
    confusion = np.zeros((4, 4), dtype=np.int64)
    for trace_id, walk in zip(trace_ids, intended_walks, strict=True):
        for step, behavior in enumerate(walk):
            if (trace_id, step) in measured:
                confusion[INDEX[behavior], INDEX[measured[(trace_id, step)]]] += 1
    total = int(confusion.sum())
    target = np.array(params["graph"]["P"], dtype=float)
    P_measured = transition_matrix(
        transition_counts(store, Selection(annotator=annotator, run=fidelity_run)).transitions
    )
    P_intended = transition_matrix(walk_counts(intended_walks))
    r = pearson(target, P_measured)
    lengths = [len(walk) for walk in intended_walks]
    correct = [trace.meta["mole_syn"].get("correct") for trace in traces]
    per_behavior = {
        b: {
            "intended": int(confusion[i].sum()),
            "measured": int(confusion[:, i].sum()),
            "agree": int(confusion[i, i]),
            "recall": float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else 0.0,
        }
        for i, b in enumerate(BEHAVIORS)
    }
    report = FidelityReport(
        run_id=run_id,
        fidelity_run=fidelity_run,
        prelabeler=candidates[position],
        annotator=annotator,
        traces=len(traces),
        steps=total,
        accuracy=float(np.trace(confusion) / total) if total else 0.0,
        per_behavior=per_behavior,
        confusion=confusion.tolist(),
        target=np.round(target, 6).tolist(),
        measured=np.round(P_measured, 6).tolist(),
        intended=np.round(P_intended, 6).tolist(),
        pearson_r=r,
        pearson_r_intended=pearson(target, P_intended),
        effective_isomer=bool(r >= EFFECTIVE_ISOMER_R),
        steps_per_trace={
            "min": float(min(lengths)),
            "mean": float(np.mean(lengths)),
            "max": float(max(lengths)),
        },
        answers={
            "checked": sum(c is not None for c in correct),
            "correct": sum(c is True for c in correct),
        },
    )
    with store.transaction():
        # r of a constant matrix is NaN: stored as null (jsonio.json_safe)
        store.finish_run(fidelity_run, "done", json_safe(asdict(report)))
    return report


def _prelabel(
    store: Store,
    plugins: Plugins,
    name: str,
    run_id: int,
    trace_ids: list[int],
    batch: int,
    progress: Progress,
) -> tuple[int, str]:
    """One transaction: a `fidelity` run and one label event per step of the run's traces."""
    labeler = plugins.get("prelabeler", name)
    annotator = annotator_name(labeler)
    progress.start(f"pre-labeling ({name})", len(trace_ids))
    with store.transaction():
        fidelity_run = store.start_run(
            FIDELITY_RUN_KIND,
            {"synthesis_run": run_id, "prelabeler": name, "version": labeler.version},
        )
        annotator_id = store.annotator_id(annotator, "model")
        for start in range(0, len(trace_ids), batch):
            chunk = trace_ids[start : start + batch]
            label_traces(store, plugins, labeler, chunk, annotator_id, fidelity_run)
            progress.advance(len(chunk))
    return fidelity_run, annotator
