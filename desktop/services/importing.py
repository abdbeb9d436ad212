"""Import traces from files and folders through the importer plugins.

One import is one transaction: if any record is bad, or a plugin raises, or the user cancels,
nothing of the batch is stored. Traces are deduplicated by content hash; importing a trace that is
already there adds only the labels and bonds it does not have yet (matched by step span).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bondscope.domain import (
    Bond,
    InputError,
    Label,
    Step,
    Trace,
    thinking_span,
    validate_steps,
    validate_trace,
)
from bondscope.hookspecs import Importer, Segmenter
from bondscope.jsonio import iter_json_records
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.store import Store, now

JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
FLUSH_ROWS = 20_000
FLUSH_CHARS = 1 << 23  # also flush after this much buffered text: a few huge traces stay streamed


@dataclass
class ImportReport:
    files: int = 0
    traces: int = 0
    duplicates: int = 0
    renamed: int = 0
    steps: int = 0
    labels: int = 0
    bonds: int = 0
    unmatched: int = 0  # labels/bonds of a duplicate trace whose step span is not in the store
    skipped: list[str] = field(default_factory=list)  # files in folders no importer recognized
    run_id: int | None = None


def plan_import(
    paths: list[Path],
    plugins: Plugins,
    format: str = "auto",
    options: dict[str, str] | None = None,
) -> tuple[list[tuple[Path, Importer]], list[str]]:
    """Which importer reads which file or folder; folders nobody claims are walked.

    Detection sees the `-o` options (an importer's `detect(path, options)`), and a file that
    several importers claim is an error naming them, never a silent pick."""
    options = options or {}
    if format == "auto":
        candidates = list(plugins.importers().values())
    else:
        candidates = [plugins.get("importer", format)]
    plan: list[tuple[Path, Importer]] = []
    skipped: list[str] = []

    def claim(path: Path) -> Importer | None:
        claimed = [importer for importer in candidates if detects(plugins, importer, path, options)]
        if len(claimed) > 1:
            names = ", ".join(importer.name for importer in claimed)
            raise InputError(
                f"several importers could read this file ({names}); pass --format NAME", path
            )
        return claimed[0] if claimed else None

    def walk(folder: Path) -> None:
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_symlink() or not (child.is_file() or child.is_dir()):
                # A link may loop or lead out of the folder (to /etc); a pipe blocks on open.
                skipped.append(str(child))
                continue
            importer = claim(child)
            if importer is not None:
                plan.append((child, importer))
            elif child.is_dir():
                walk(child)
            else:
                skipped.append(str(child))

    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", path)
        if not (path.is_file() or path.is_dir()):
            raise InputError("not a regular file or a folder (a pipe or a device?)", path)
        importer = claim(path)
        if importer is None and path.is_file() and format != "auto":
            importer = candidates[0]  # the user named the format: let it report what is wrong
        if importer is not None:
            plan.append((path, importer))
        elif path.is_dir():
            walk(path)
        else:
            raise _unrecognized(path, plugins)
    return plan, skipped


def detects(plugins: Plugins, importer: Importer, path: Path, options: dict[str, str]) -> bool:
    """The importer's verdict on `path`; `detect(path, options)` when it takes the options.

    An importer that fails, hangs or answers anything but a bool is disabled (and listed in
    `plugins.failures`): a truthy string would claim every file. The others still detect."""
    if not plugins.is_active("importer", importer.name):
        return False  # disabled by an earlier answer
    takes_options = len(inspect.signature(importer.detect).parameters) >= 2
    args = (path, options) if takes_options else (path,)
    try:
        verdict = plugins.call("importer", importer.name, importer.detect, *args, limited=True)
    except PluginError:
        return False
    if verdict is not True and verdict is not False:
        error = TypeError(f"detect() returned {type(verdict).__name__}, not a bool")
        plugins.disable(plugins.owner("importer", importer.name), error)
        return False
    return verdict


def _unrecognized(path: Path, plugins: Plugins) -> InputError:
    """Why no importer took a file: for a JSON file, the parse error or the keys it has."""
    names = ", ".join(plugins.importers())
    hint = f"pass --format (one of: {names})"
    if path.suffix.lower() in JSON_SUFFIXES:
        try:
            record = next((r for _, r in iter_json_records(path)), None)
        except InputError as error:
            return error  # the real cause, with its line
        except OSError as error:
            return InputError(error.strerror or str(error), path)
        if isinstance(record, dict):
            keys = ", ".join(sorted(record)[:12]) or "none"
            return InputError(
                f"no importer recognizes these records (keys: {keys}); {hint}, or name the "
                "fields with --option (e.g. response_field=NAME)",
                path,
            )
        kind = type(record).__name__ if record is not None else "nothing"
        return InputError(f"no importer recognizes this file (it holds {kind}); {hint}", path)
    return InputError(f"no importer recognizes this file; {hint}", path)


def import_paths(
    store: Store,
    plugins: Plugins,
    paths: list[Path],
    *,
    format: str = "auto",
    segmenter: str = "paragraph",
    options: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    progress = progress or NullProgress()
    options = options or {}
    plan, skipped = plan_import(paths, plugins, format, options)
    if not plan:
        message = "found nothing to import"
        if skipped:
            shown = ", ".join(Path(p).name for p in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            message += f"; no importer recognizes the {len(skipped)} files in it ({shown}{more})"
        raise InputError(message, paths[0] if paths else None)
    chosen_segmenter = plugins.get("segmenter", segmenter)
    report = ImportReport(skipped=skipped)
    progress.start("importing", len(plan))
    with store.transaction():
        run_id = store.start_run(
            "import",
            {
                "paths": [str(p) for p in paths],
                "format": format,
                "segmenter": segmenter,
                "options": options,
            },
        )
        writer = TraceWriter(store, plugins, chosen_segmenter, run_id, report)
        for path, importer in plan:
            writer.annotator_kinds = getattr(importer, "annotator_kinds", {})
            for trace in read_traces(plugins, importer, path, options):
                try:
                    validate_trace(trace)
                except InputError as error:
                    raise error.located(path, trace.line) from None
                writer.add(trace, path)
                check_cancelled(progress)
            report.files += 1
            progress.advance(1, f"{report.traces} traces, {report.steps} steps")
        writer.flush()
        report.run_id = run_id
        store.finish_run(run_id, "done", _summary(report))
    return report


def _summary(report: ImportReport) -> dict[str, int]:
    return {
        "files": report.files,
        "traces": report.traces,
        "duplicates": report.duplicates,
        "steps": report.steps,
        "labels": report.labels,
        "bonds": report.bonds,
    }


def read_traces(
    plugins: Plugins, importer: Importer, path: Path, options: dict[str, str]
) -> Iterator[Trace]:
    """The importer's traces; a crash inside the plugin disables it and names it."""
    iterator = plugins.call("importer", importer.name, importer.read, path, options)
    while True:
        try:
            trace = plugins.limited("importer", importer.name, next, iterator)
        except StopIteration:
            return
        except InputError as error:
            raise error.located(path) from None
        except OSError as error:  # unreadable input is the data's fault, not the plugin's
            raise InputError(error.strerror or str(error), error.filename or path) from None
        except (KeyboardInterrupt, PluginError):
            raise
        except Exception as error:
            raise plugins.disable(plugins.owner("importer", importer.name), error) from error
        problem = _malformed(trace)
        if problem:
            error = TypeError(f"importer {importer.name!r} yielded {problem}")
            raise plugins.disable(plugins.owner("importer", importer.name), error)
        yield trace


def _malformed(trace: object) -> str | None:
    """What is wrong with the *shape* of an importer's Trace (a plugin bug, not bad data)."""
    if not isinstance(trace, Trace):
        return f"{type(trace).__name__}, not Trace"
    if trace.steps is not None and (
        not isinstance(trace.steps, list) or not all(isinstance(s, Step) for s in trace.steps)
    ):
        return "steps that are not a list of Step"
    if not isinstance(trace.labels, list) or not all(isinstance(x, Label) for x in trace.labels):
        return "labels that are not a list of Label"
    if not isinstance(trace.bonds, list) or not all(isinstance(x, Bond) for x in trace.bonds):
        return "bonds that are not a list of Bond"
    try:
        json.dumps(trace.meta)
    except TypeError as error:
        return f"meta that is not JSON ({error})"
    except ValueError:
        pass  # NaN, Infinity or a cycle: validate_trace names the field
    return None


def segment_trace(
    plugins: Plugins, segmenter: Segmenter, trace_text: str, given: list[Step] | None
) -> list[Step]:
    """Run a segmenter and check its spans: a bad span is the plugin's fault, not the data's."""
    region = thinking_span(trace_text)
    steps = plugins.call(
        "segmenter", segmenter.name, segmenter.segment, trace_text, region, given, limited=True
    )
    try:
        if not isinstance(steps, list) or not all(isinstance(s, Step) for s in steps):
            raise TypeError(f"segment() returned {type(steps).__name__}, not a list of Step")
        validate_steps(steps, len(trace_text))
    except (TypeError, InputError) as error:
        raise plugins.disable(plugins.owner("segmenter", segmenter.name), error) from None
    return steps


class TraceWriter:
    """Buffers rows and writes them with executemany: the import hot path."""

    def __init__(
        self,
        store: Store,
        plugins: Plugins,
        segmenter: Segmenter,
        run_id: int,
        report: ImportReport,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.segmenter = segmenter
        self.run_id = run_id
        self.report = report
        self.created_at = now()
        conn = store.conn
        self.next_trace_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM traces").fetchone()[
            0
        ]
        self.next_step_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM steps").fetchone()[0]
        self.annotators: dict[str, int] = {}
        self.annotator_kinds: dict[str, str] = {}  # declared by the importer, e.g. an LLM's name
        self.new_hashes: dict[str, int] = {}
        self.new_names: set[str] = set()
        self.trace_rows: list[tuple] = []
        self.step_rows: list[tuple] = []
        self.label_rows: list[tuple] = []
        self.bond_rows: list[tuple] = []
        self.buffered_chars = 0

    def annotator(self, name: str, declared: dict[str, str]) -> int:
        """The annotator's id; a new one gets the kind the trace or the importer declares."""
        if name not in self.annotators:
            kind = declared.get(name) or self.annotator_kinds.get(name)
            self.annotators[name] = self.store.annotator_id(name, kind)
        return self.annotators[name]

    def add(self, trace: Trace, path: Path) -> None:
        digest = trace.content_hash
        existing = self.new_hashes.get(digest)
        if existing is None:
            row = self.store.conn.execute(
                "SELECT id FROM traces WHERE content_hash = ?", (digest,)
            ).fetchone()
            existing = row[0] if row else None
        if existing is not None:
            self.flush()  # the duplicate may refer to rows still in the buffers
            self._merge_into(existing, trace)
            return
        if trace.steps is None:
            steps = segment_trace(self.plugins, self.segmenter, trace.text, None)
            given = None
        else:
            steps = trace.steps
            given = json.dumps([[s.start, s.end] for s in steps])
        trace_id = self.next_trace_id
        self.next_trace_id += 1
        self.new_hashes[digest] = trace_id
        self.trace_rows.append(
            (
                trace_id,
                self._unique_name(trace.id),
                digest,
                trace.source,
                trace.model,
                trace.question,
                trace.text,
                trace.answer,
                given,
                json.dumps(trace.meta, ensure_ascii=False),
                self.run_id,
                self.created_at,
            )
        )
        step_ids = range(self.next_step_id, self.next_step_id + len(steps))
        self.next_step_id += len(steps)
        run_id = self.run_id
        self.step_rows.extend(
            (step_id, trace_id, idx, step.start, step.end, run_id)
            for idx, (step_id, step) in enumerate(zip(step_ids, steps, strict=True))
        )
        self._add_events(trace, list(step_ids))
        self.report.traces += 1
        self.report.steps += len(steps)
        self.buffered_chars += len(trace.text)
        if (
            len(self.step_rows) + len(self.label_rows) >= FLUSH_ROWS
            or self.buffered_chars >= FLUSH_CHARS
        ):
            self.flush()

    def _unique_name(self, name: str) -> str:
        candidate, n = name, 1
        while (
            candidate in self.new_names
            or self.store.conn.execute(
                "SELECT 1 FROM traces WHERE name = ?", (candidate,)
            ).fetchone()
        ):
            n += 1
            candidate = f"{name}#{n}"
        if n > 1:
            self.report.renamed += 1
        self.new_names.add(candidate)
        return candidate

    def _add_events(self, trace: Trace, step_ids: list[int | None]) -> None:
        for label in trace.labels:
            step_id = step_ids[label.step]
            if step_id is None:
                self.report.unmatched += 1
                continue
            self.label_rows.append(
                (
                    step_id,
                    self.annotator(label.annotator, trace.annotator_kinds),
                    label.behavior,
                    label.confidence,
                    label.seconds,
                    self.run_id,
                    label.created_at or self.created_at,
                )
            )
            self.report.labels += 1
        for bond in trace.bonds:
            source, target = step_ids[bond.source], step_ids[bond.target]
            if source is None or target is None:
                self.report.unmatched += 1
                continue
            self.bond_rows.append(
                (
                    source,
                    target,
                    bond.type,
                    self.annotator(bond.annotator, trace.annotator_kinds),
                    self.run_id,
                    self.created_at,
                )
            )
            self.report.bonds += 1

    def _merge_into(self, trace_id: int, trace: Trace) -> None:
        """Add the duplicate's labels and bonds that the stored trace does not have yet."""
        self.report.duplicates += 1
        if not trace.labels and not trace.bonds:
            return
        by_span = {(s.start, s.end): sid for sid, s in self.store.active_steps(trace_id)}
        step_ids = [by_span.get((s.start, s.end)) for s in trace.steps or []]
        current_labels = self.store.trace_current_labels(trace_id)
        current_bonds = self.store.trace_current_bonds(trace_id)
        trace.labels = [
            label
            for label in trace.labels
            if step_ids[label.step] is None
            or current_labels.get((step_ids[label.step], label.annotator))
            != (label.behavior, label.confidence)
        ]
        trace.bonds = [
            bond
            for bond in trace.bonds
            if step_ids[bond.source] is None
            or step_ids[bond.target] is None
            or (step_ids[bond.source], step_ids[bond.target], bond.type, bond.annotator)
            not in current_bonds
        ]
        self._add_events(trace, step_ids)

    def flush(self) -> None:
        conn = self.store.conn
        if self.trace_rows:
            conn.executemany(
                "INSERT INTO traces (id, name, content_hash, source, model, question, text, answer,"
                " given_steps, meta, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                self.trace_rows,
            )
        if self.step_rows:
            conn.executemany(
                'INSERT INTO steps (id, trace_id, idx, start, "end", run_id) VALUES (?,?,?,?,?,?)',
                self.step_rows,
            )
        if self.label_rows:
            conn.executemany(
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, seconds,"
                " run_id, created_at) VALUES (?,?,?,?,?,?,?)",
                self.label_rows,
            )
        if self.bond_rows:
            conn.executemany(
                "INSERT INTO bond_events (from_step_id, to_step_id, type, annotator_id, run_id,"
                " created_at) VALUES (?,?,?,?,?,?)",
                self.bond_rows,
            )
        self.trace_rows, self.step_rows, self.label_rows, self.bond_rows = [], [], [], []
        self.buffered_chars = 0
