"""Batch pre-labeling and corpus metrics on Ray, for corpora beyond a desktop (docs/cluster.md).

**Pre-label.** The driver plans the input with the importer plugins (`plan_import`). Ray Data
reads each planned file in a task (importer, validation, segmentation: the import service's
steps), cuts its traces into shards of `shard_traces` and each shard into chunks of `batch_size`
traces, and streams the chunks to a pool of actors (`map_batches` with a callable class): each
actor holds one pre-labeler, so one ONNX session, on a GPU when the cluster has GPUs and on its
share of the CPU cores otherwise. The driver collects the labeled chunks and writes each shard, once
all its chunks are in, with the `parquet` exporter (the export schema of `tables.py`) into a hidden
staging folder renamed into place: a shard folder exists only complete, so a rerun skips the
shards already there and `bondscope import` takes the folder back. Duplicates are not removed
here (importing the shards does that).

A chunk is a group of traces the single-machine `prelabel` predicts together (16 consecutive
traces): the int8 encoder quantizes activations per encoder batch, so a step's probabilities can
depend on the steps batched with it, and the same grouping gives the same labels.

**Metrics.** Each shard's labels become behavior and transition counts per (annotator, group) in a
Ray task; the driver sums them (counts add up across shards, since a trace lives in one shard) and
derives the matrices, stationary distributions and comparisons of `metrics` / `compare` with
`services/structure.py` and the metric plugins.

Ray is imported only inside these functions (`require_ray`), so the core never needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from bondscope.domain import Bond, InputError, Label, Step, Trace, validate_trace
from bondscope.hookspecs import Prelabeler
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import NullProgress, Progress
from bondscope.services.importing import plan_import, read_traces, segment_trace
from bondscope.services.prelabeling import BATCH_TRACES, annotator_name, predict
from bondscope.services.structure import (
    ALPHABET,
    CountedSelection,
    Counts,
    SelectionError,
    Sequences,
    compare,
    counts_of,
    mixing_warnings,
    never_left,
    preset,
    transition_matrix,
)

RAY_HINT = (
    'install the cluster extra: pip install "bondscope[cluster]" (or pip install "ray[data]")'
)
MANIFEST = ".bondscope-batch.json"
FORMAT = "bondscope-batch/1"
STAGING = ".staging-"
SHARD_TRACES = 1024
READ_CPUS = 0.5  # a reader task's CPU share: reading is light next to encoding
BLOCK_BYTES = 1  # every chunk its own block: actors share out even a small file's chunks
# Everything that changes what a shard holds: a rerun must use the same values.
SETTINGS = ("annotator", "batch_size", "shard_traces", "segmenter", "options")


class BatchError(LookupError):
    """A batch command cannot run as asked (Ray missing, another run's output folder, ...)."""


def require_ray() -> Any:
    """The `ray` module, or a BatchError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 (the data extra)
    except ImportError as error:
        raise BatchError(f"this command needs Ray ({error}); {RAY_HINT}") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to the cluster at `address`, or start a local Ray (`num_cpus`: all by default).

    A session the caller opened already (a test, a notebook) is used as it is and left open;
    one opened here is shut down at the end, which also stops the job's actors on a cluster.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _data_settings(ray: Any) -> Iterator[None]:
    """Ray Data settings for our jobs, restored afterwards (the caller's session may run others).

    Our progress bar replaces Ray Data's, which would fight it on the terminal. One chunk per
    block (instead of up to 128 MB) spreads a file's chunks over all actors and lets each
    labeled chunk reach the writer, and the bar, as soon as it is done.
    """
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars, context.target_max_block_size
    context.enable_progress_bars, context.target_max_block_size = False, BLOCK_BYTES
    # Ray Data logs each execution at INFO, and says "progress bars disabled" as a warning
    loggers = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        context.enable_progress_bars, context.target_max_block_size = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# -- pre-labeling ----------------------------------------------------------------------------


@dataclass
class BatchPrelabelReport:
    output: str
    annotator: str
    device: str = ""  # cuda or cpu: what the actors run on
    workers: int = 0
    files: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    traces: int = 0
    steps: int = 0
    seconds: float = 0.0
    status: str = "running"  # done, cancelled or failed
    skipped: list[str] = field(default_factory=list)  # files no importer recognizes

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class WorkerPool:
    """The actors' resources: one pre-labeler (one ONNX session) per actor."""

    device: str
    workers: int
    num_cpus: float
    num_gpus: float
    threads: int | None  # encoder batches a CPU actor runs at once, one core each


def worker_pool(
    resources: dict[str, float], workers: int | None, gpus_per_worker: float | None
) -> WorkerPool:
    """CUDA actors when the cluster has GPUs (or they are asked for), CPU actors otherwise.

    CPU actors split the cores left after the reader tasks' share, so on a 2-core laptop two
    workers each run a one-thread session instead of fighting over both cores.
    """
    cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
    if workers is not None and workers < 1:
        raise BatchError("--workers must be at least 1")
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus else 0.0
    if gpus_per_worker < 0:
        raise BatchError("--num-gpus-per-worker must be 0 (CPU workers) or more")
    if gpus_per_worker > 0:
        if workers is None:  # an autoscaling cluster may add GPU nodes when told how many
            if not gpus:
                raise BatchError(
                    "the Ray cluster has no GPUs; pass --num-gpus-per-worker 0 for CPU workers "
                    "(or --workers N to wait for GPU nodes an autoscaler adds)"
                )
            workers = max(1, int(gpus // gpus_per_worker))
        return WorkerPool("cuda", workers, 1.0, gpus_per_worker, None)
    available = max(cpus - READ_CPUS, 0.5)
    workers = workers or max(1, int(available))
    share = available / workers
    return WorkerPool("cpu", workers, share, 0.0, max(1, round(share)))


def batch_prelabel(
    plugins: Plugins,
    paths: list[Path],
    output: Path,
    *,
    prelabeler: str = "bondscope-minilm",
    batch_size: int = BATCH_TRACES,
    shard_traces: int = SHARD_TRACES,
    segmenter: str = "paragraph",
    format: str = "auto",
    options: dict[str, str] | None = None,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    num_cpus: int | None = None,
    progress: Progress | None = None,
) -> BatchPrelabelReport:
    """Pre-label every importable trace under `paths` into Parquet shards under `output`.

    Everything is checked before Ray starts (inputs, model, settings, the output folder), so a
    mistake costs no cluster time; see the module doc for the pipeline. Ctrl+C (or
    `progress.cancelled()`) stops the job: finished shards stay, and the same command resumes.
    """
    require_ray()
    progress = progress or NullProgress()
    options = options or {}
    if batch_size < 1:
        raise BatchError("--batch-size must be at least 1")
    if shard_traces < batch_size or shard_traces % batch_size:
        raise BatchError(
            f"--shard-traces must be a multiple of --batch-size ({batch_size}), got {shard_traces}"
        )
    model: Prelabeler = plugins.get("prelabeler", prelabeler)
    plugins.get("segmenter", segmenter)
    plan, skipped = plan_import(paths, plugins, format)
    if not plan:
        raise InputError("found nothing to import", paths[0] if paths else None)
    settings = {
        "annotator": annotator_name(model),
        "batch_size": batch_size,
        "shard_traces": shard_traces,
        "segmenter": segmenter,
        "options": options,
    }
    inputs = {_input_key(path, importer.name): (path, importer.name) for path, importer in plan}
    created = not output.exists()
    manifest = _open_output(output, settings, inputs)
    report = BatchPrelabelReport(str(output), settings["annotator"], skipped=skipped)
    report.files = len(inputs)
    done = _done_shards(output)
    todo = []
    for key, entry in manifest["inputs"].items():
        parts = sorted(done.get(key, ()))
        report.shards_skipped += len(parts)
        if entry["shards"] is not None and len(parts) == entry["shards"]:
            continue  # read to the end by an earlier run, and every shard is still there
        entry["shards"] = None
        todo.append(
            {"path": entry["path"], "importer": entry["importer"], "key": key, "done": parts}
        )
    began = time.perf_counter()
    if not todo:
        report.status = "done"
        return report
    with ray_session(address, num_cpus) as ray, _data_settings(ray):
        pool = worker_pool(ray.cluster_resources(), workers, gpus_per_worker)
        report.device, report.workers = pool.device, pool.workers
        dataset = (
            ray.data.from_items(todo, override_num_blocks=len(todo))
            .map_batches(
                read_chunks,
                batch_size=1,
                num_cpus=READ_CPUS,
                fn_kwargs={
                    "segmenter": segmenter,
                    "options": options,
                    "shard_traces": shard_traces,
                    "batch_size": batch_size,
                },
            )
            .map_batches(
                ChunkPrelabeler,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=pool.workers),
                num_cpus=pool.num_cpus,
                num_gpus=pool.num_gpus or None,
                fn_constructor_kwargs={
                    "prelabeler": prelabeler,
                    "provider": pool.device,
                    "threads": pool.threads,
                },
            )
        )
        progress.start(f"pre-labeling on Ray ({pool.workers} {pool.device} workers)", None)
        try:
            _write_shards(dataset, output, manifest, plugins, report, progress, began)
        except BaseException as error:
            report.status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
            raise
        finally:
            report.seconds = time.perf_counter() - began
            if created and not report.shards_written:
                shutil.rmtree(output, ignore_errors=True)  # nothing to resume: leave no trace
            else:
                _clear_staging(output)
                _save_manifest(output, manifest)
    return report


def _write_shards(
    dataset: Any,
    output: Path,
    manifest: dict[str, Any],
    plugins: Plugins,
    report: BatchPrelabelReport,
    progress: Progress,
    began: float,
) -> None:
    """Drain the labeled chunks; write each shard when its last chunk arrives."""
    exporter = plugins.get("exporter", "parquet")
    pending: dict[str, dict[int, list[Trace]]] = {}
    try:
        for row in dataset.iter_rows():
            if progress.cancelled():
                report.status = "cancelled"
                return
            if row["chunk"] < 0:  # the reader reached the end of this file
                manifest["inputs"][row["file"]]["shards"] = row["part"]
                continue
            chunks = pending.setdefault(row["shard"], {})
            chunks[row["chunk"]] = traces_from_json(row["traces"])
            if len(chunks) < row["chunks"]:
                continue
            traces = [trace for n in sorted(chunks) for trace in chunks[n]]
            del pending[row["shard"]]
            staging = output / f"{STAGING}{row['shard']}"
            exporter.export(traces, staging)
            staging.rename(output / row["shard"])
            report.shards_written += 1
            report.traces += len(traces)
            steps = sum(len(trace.steps or ()) for trace in traces)
            report.steps += steps
            report.seconds = time.perf_counter() - began
            progress.advance(
                len(traces),
                f"{report.shards_written} shards, {report.steps_per_second:.0f} steps/s",
            )
        report.status = "done"
    except Exception as error:
        cause = _user_error(error)
        if cause is None:
            raise
        raise cause from None


def _user_error(error: BaseException) -> BaseException | None:
    """The bad-input or plugin error a worker raised, out of Ray's wrappers (None: a real bug)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, InputError | BatchError) and not type(error).__module__.startswith(
            "ray"
        ):
            return error
        error = getattr(error, "cause", None) or error.__cause__
    return None


@cache
def worker_plugins() -> Plugins:
    """One plugin manager per Ray worker process (entry points load there as on the driver)."""
    return Plugins()


def read_chunks(
    batch: dict[str, np.ndarray],
    *,
    segmenter: str,
    options: dict[str, str],
    shard_traces: int,
    batch_size: int,
) -> Iterator[dict[str, list[Any]]]:
    """Ray Data reader: one input file per row in, its shards' chunks out (then an end marker).

    Shards an earlier run wrote are read past without segmenting. Trace ids are made unique
    within a shard (`#2`, as import renames them), since a shard's tables join on them.
    """
    plugins = worker_plugins()
    chosen = plugins.get("segmenter", segmenter)
    for path, importer_name, key, done in zip(
        batch["path"], batch["importer"], batch["key"], batch["done"], strict=True
    ):
        importer = plugins.get("importer", importer_name)
        finished = {int(part) for part in done}
        part, shard = 0, []
        try:
            for trace in read_traces(plugins, importer, Path(path), options):
                try:
                    validate_trace(trace)
                except InputError as error:
                    raise error.located(path, trace.line) from None
                shard.append(trace)
                if len(shard) == shard_traces:
                    if part not in finished:
                        yield from _chunks(plugins, chosen, key, part, shard, batch_size)
                    part, shard = part + 1, []
            if shard:
                if part not in finished:
                    yield from _chunks(plugins, chosen, key, part, shard, batch_size)
                part += 1
        except PluginError as error:  # carries the plugin's exception, which may not pickle
            raise BatchError(str(error)) from None
        end = {"shard": [""], "file": [key], "part": [part], "chunk": [-1], "chunks": [0]}
        yield {**end, "traces": [b""]}


def _chunks(
    plugins: Plugins, segmenter: Any, key: str, part: int, traces: list[Trace], size: int
) -> Iterator[dict[str, list[Any]]]:
    """One shard's chunks, one row per yield (so Ray Data can cut blocks between them)."""
    names: set[str] = set()
    for trace in traces:
        if trace.steps is None:
            trace.steps = segment_trace(plugins, segmenter, trace.text, None)
        name, n = trace.id, 1
        while name in names:
            n += 1
            name = f"{trace.id}#{n}"
        trace.id = name
        names.add(name)
    groups = [traces[at : at + size] for at in range(0, len(traces), size)]
    for n, group in enumerate(groups):
        yield {
            "shard": [f"{key}-{part:05d}"],
            "file": [key],
            "part": [part],
            "chunk": [n],
            "chunks": [len(groups)],
            "traces": [traces_to_json(group)],
        }


def traces_to_json(traces: list[Trace]) -> bytes:
    """A chunk of traces as it travels between the Ray tasks: JSON, never pickle (a payload must
    not be able to run code where it is read, docs/reliability.md)."""
    return json.dumps([asdict(trace) for trace in traces], ensure_ascii=False).encode("utf-8")


def traces_from_json(payload: bytes) -> list[Trace]:
    traces = []
    for data in json.loads(payload):
        steps, labels, bonds = data.pop("steps"), data.pop("labels"), data.pop("bonds")
        traces.append(
            Trace(
                **data,
                steps=None if steps is None else [Step(**step) for step in steps],
                labels=[Label(**label) for label in labels],
                bonds=[Bond(**bond) for bond in bonds],
            )
        )
    return traces


class ChunkPrelabeler:
    """Ray Data actor: one pre-labeler (one ONNX session) predicting one chunk per call."""

    def __init__(self, prelabeler: str, provider: str, threads: int | None) -> None:
        self.plugins = worker_plugins()
        self.prelabeler: Prelabeler = self.plugins.get("prelabeler", prelabeler)
        set_provider = getattr(self.prelabeler, "set_provider", None)  # the ONNX classifier's
        if set_provider is not None:
            self.plugins.call("prelabeler", prelabeler, lambda: set_provider(provider, threads))
        self.annotator = annotator_name(self.prelabeler)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        labeled = []
        for chunk, payload in zip(batch["chunk"], batch["traces"], strict=True):
            if chunk < 0:
                labeled.append(payload)
                continue
            traces = traces_from_json(payload)
            try:
                predictions = predict(self.plugins, self.prelabeler, traces)
            except PluginError as error:
                raise BatchError(str(error)) from None
            for trace, predicted in zip(traces, predictions, strict=True):
                trace.labels.extend(
                    Label(i, p.behavior, self.annotator, p.confidence)
                    for i, p in enumerate(predicted)
                )
            labeled.append(traces_to_json(traces))
        batch["traces"] = np.array(labeled, dtype=object)
        return batch


# -- the output folder: manifest and shards --------------------------------------------------


def _input_key(path: Path, importer: str) -> str:
    """Names a planned input's shards: stable across reruns, distinct for distinct inputs."""
    return hashlib.sha256(f"{path.resolve()}\0{importer}".encode()).hexdigest()[:12]


def _fingerprint(path: Path) -> dict[str, int]:
    """Size and newest mtime (of every file under a folder): a changed input is noticed."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return {
        "size": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def _open_output(
    output: Path, settings: dict[str, Any], inputs: dict[str, tuple[Path, str]]
) -> dict[str, Any]:
    """The manifest of `output`, created or checked against this run (see SETTINGS)."""
    manifest_path = output / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if manifest.get("format") != FORMAT:
            raise BatchError(f"{manifest_path}: not a {FORMAT} manifest")
        for name in SETTINGS:
            if manifest[name] != settings[name]:
                raise BatchError(
                    f"{output} holds shards written with {name} = {manifest[name]!r}, not "
                    f"{settings[name]!r}; rerun with the same settings or use a new --output"
                )
    elif output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise BatchError(f"{output} exists and is not a batch output folder; use a new --output")
    else:
        manifest = {"format": FORMAT, **settings, "inputs": {}}
    for key, (path, importer) in inputs.items():
        fingerprint = _fingerprint(path)
        known = manifest["inputs"].get(key)
        if known is None:
            manifest["inputs"][key] = {
                "path": str(path.resolve()),
                "importer": importer,
                **fingerprint,
                "shards": None,
            }
        elif {k: known[k] for k in fingerprint} != fingerprint:
            raise BatchError(
                f"{path} changed since its shards in {output} were written; use a new --output"
            )
    output.mkdir(parents=True, exist_ok=True)
    _clear_staging(output)  # left by a run that was killed
    _save_manifest(output, manifest)
    return manifest


def _save_manifest(output: Path, manifest: dict[str, Any]) -> None:
    temporary = output / f"{MANIFEST}.partial"
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), "utf-8")
    os.replace(temporary, output / MANIFEST)


def _done_shards(output: Path) -> dict[str, set[int]]:
    """Shard folders already in place, as {input key: {part, ...}}."""
    done: dict[str, set[int]] = {}
    for child in output.iterdir():
        key, _, part = child.name.rpartition("-")
        if child.is_dir() and not child.name.startswith(".") and part.isdigit():
            done.setdefault(key, set()).add(int(part))
    return done


def _clear_staging(output: Path) -> None:
    for child in output.glob(f"{STAGING}*"):
        shutil.rmtree(child, ignore_errors=True)


# -- corpus metrics --------------------------------------------------------------------------


def parse_by(by: str | None) -> tuple[str, str | None] | None:
    """`model`, `source` or `meta.KEY` as (kind, KEY); None for no grouping."""
    if by is None:
        return None
    if by in ("model", "source"):
        return by, None
    if by.startswith("meta.") and len(by) > len("meta."):
        return "meta", by.removeprefix("meta.")
    raise SelectionError(f"cannot group by {by!r} (model, source or meta.KEY)")


def shard_folders(root: Path) -> list[Path]:
    """Every folder at or under `root` that holds a Parquet export's traces and labels."""
    if not root.is_dir():
        raise InputError("not a folder of Parquet shards", root)
    found = [
        path.parent
        for path in sorted(root.rglob("labels.parquet"))
        if (path.parent / "traces.parquet").is_file()
        and not any(part.startswith(".") for part in path.parent.relative_to(root).parts)
    ]
    if not found:
        raise InputError("no Parquet shards (folders with labels.parquet and traces.parquet)", root)
    return found


def shard_counts(folder: Path, by: tuple[str, str | None] | None) -> list[dict[str, Any]]:
    """Counts of one shard per (annotator, key, value); keys: model, source and the grouping.

    Labels are sorted by (trace, step) per annotator and counted by `structure.counts_of`, the
    function `bondscope metrics` counts with, so the sums equal the single-machine counts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    meta_key = by[1] if by and by[0] == "meta" else None
    columns = ["trace_id", "model", "source"] + (["meta"] if meta_key else [])
    traces = pq.read_table(folder / "traces.parquet", columns=columns)
    labels = pq.read_table(
        folder / "labels.parquet", columns=["trace_id", "step", "behavior", "annotator"]
    )
    position = pc.index_in(labels["trace_id"], value_set=traces["trace_id"])
    code = pc.index_in(labels["behavior"], value_set=pa.array(list(ALPHABET)))
    if position.null_count or code.null_count:
        raise InputError(
            "labels.parquet: a label names no trace of traces.parquet or no behavior", folder
        )
    position = position.to_numpy(zero_copy_only=False).astype(np.int64)
    code = code.to_numpy(zero_copy_only=False).astype(np.int64)
    step = labels["step"].to_numpy(zero_copy_only=False).astype(np.int64)
    annotators = labels["annotator"].to_numpy(zero_copy_only=False)
    values = {"model": np.array(traces["model"].to_pylist(), dtype=object)}
    values["source"] = np.array(traces["source"].to_pylist(), dtype=object)
    if meta_key:
        values["meta"] = np.array(
            [_meta_value(text, meta_key) for text in traces["meta"].to_pylist()], dtype=object
        )
    rows = []
    for annotator in sorted(set(annotators)):
        mine = annotators == annotator
        order = np.lexsort((step[mine], position[mine]))
        trace, idx, behavior = position[mine][order], step[mine][order], code[mine][order]
        for key, value_of in values.items():
            of_label = value_of[trace]
            for value in sorted(set(of_label), key=_order):
                part = of_label == value
                counts = counts_of(Sequences(trace[part], idx[part], behavior[part]))
                rows.append(
                    {
                        "annotator": annotator,
                        "key": key,
                        "value": value,
                        "behaviors": counts.behaviors.tolist(),
                        "transitions": counts.transitions.ravel().tolist(),
                        "traces": counts.traces,
                    }
                )
    return rows


def _meta_value(text: str | None, key: str) -> str | None:
    """A trace's meta.KEY as a group name: strings as they are, other values as JSON."""
    meta = json.loads(text) if text else {}
    value = meta.get(key) if isinstance(meta, dict) else None
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _order(value: str | None) -> tuple[bool, str]:
    return (value is not None, value or "")


def count_shards(
    batch: dict[str, np.ndarray], *, by: tuple[str, str | None] | None
) -> dict[str, list[str]]:
    """Ray Data task: shard folders in, their counts (as JSON, one row per shard) out."""
    return {"counts": [json.dumps(shard_counts(Path(folder), by)) for folder in batch["folder"]]}


@dataclass
class GroupResult:
    value: str | None  # the group's model, source or meta value (None: no grouping)
    selection: str  # what was counted, as `metrics` describes a selection
    label: str  # the group alone (`model=m1`, or `all labels` without grouping)
    labeled: CountedSelection
    metrics: dict[str, Any]  # metric name -> MetricResult


@dataclass
class BatchMetrics:
    annotator: str
    by: str | None
    shards: int
    groups: list[GroupResult]
    comparisons: list[dict[str, Any]]
    warnings: list[str]


METRICS = ("behavior-distribution", "transition-matrix")


def batch_metrics(
    plugins: Plugins,
    root: Path,
    *,
    by: str | None = None,
    annotator: str | None = None,
    alpha: float = 0.0,
    presets: tuple[str, ...] = (),
    address: str | None = None,
    num_cpus: int | None = None,
    progress: Progress | None = None,
) -> BatchMetrics:
    """Behavior distributions, transition matrices and comparisons of the shards under `root`.

    One group per value of `by` (or one pooled group), each measured by the metric plugins of
    `bondscope metrics`; groups are compared pairwise and with each preset as `compare` does,
    with Laplace smoothing `alpha` for groups where some behavior is never left.
    """
    require_ray()
    progress = progress or NullProgress()
    grouping = parse_by(by)
    targets = [preset(name) for name in presets]
    folders = shard_folders(root)
    totals: dict[tuple[str, str, str | None], list[Any]] = {}
    with ray_session(address, num_cpus) as ray, _data_settings(ray):
        dataset = ray.data.from_items(
            [{"folder": str(folder)} for folder in folders],
            override_num_blocks=min(len(folders), 1000),
        ).map_batches(count_shards, batch_size=1, fn_kwargs={"by": grouping})
        progress.start("counting shards on Ray", len(folders))
        try:
            for row in dataset.iter_rows():
                for entry in json.loads(row["counts"]):
                    key = (entry["annotator"], entry["key"], entry["value"])
                    total = totals.setdefault(
                        key, [np.zeros(4, np.int64), np.zeros(16, np.int64), 0]
                    )
                    total[0] += entry["behaviors"]
                    total[1] += entry["transitions"]
                    total[2] += entry["traces"]
                progress.advance(1)
        except Exception as error:
            cause = _user_error(error)
            if cause is None:
                raise
            raise cause from None
    annotator = _resolve_annotator(totals, annotator, root)

    def counts(key: str) -> dict[str | None, Counts]:
        found = {
            value: Counts(total[1].reshape(4, 4), total[0], total[2])
            for (who, kind, value), total in totals.items()
            if who == annotator and kind == key
        }
        return dict(sorted(found.items(), key=lambda item: _order(item[0])))

    by_model = counts("model")
    if grouping is None:
        pooled = Counts(
            sum(c.transitions for c in by_model.values()),
            sum(c.behaviors for c in by_model.values()),
            sum(c.traces for c in by_model.values()),
        )
        parts = {None: pooled}
        warnings = [
            warning
            for key in ("model", "source")
            for warning in mixing_warnings(key, {v: c.transitions for v, c in counts(key).items()})
        ]
    else:
        parts, warnings = counts(grouping[0]), []
    groups = []
    for value, part in parts.items():
        label = "all labels" if grouping is None else f"{by}={value}"
        selection = f"annotator={annotator}" + ("" if grouping is None else f", {label}")
        labeled = CountedSelection(selection, part)
        results = {
            name: plugins.call("metric", name, plugins.get("metric", name).compute, labeled)
            for name in METRICS
        }
        groups.append(GroupResult(value, selection, label, labeled, results))
    return BatchMetrics(
        annotator, by, len(folders), groups, _comparisons(groups, targets, alpha), warnings
    )


def _resolve_annotator(
    totals: dict[tuple[str, str, str | None], list[Any]], annotator: str | None, root: Path
) -> str:
    """One annotator at a time, as `metrics` insists (pooling two would count steps twice)."""
    labels: dict[str, int] = {}
    for (who, kind, _), total in totals.items():
        if kind == "model":
            labels[who] = labels.get(who, 0) + int(total[0].sum())
    if annotator is not None:
        if annotator not in labels:
            listed = ", ".join(sorted(labels)) or "none"
            raise SelectionError(f"no labels of {annotator!r} in {root} (annotators: {listed})")
        return annotator
    if not labels:
        raise SelectionError(f"no labels in {root}")
    if len(labels) > 1:
        listed = ", ".join(f"{name} ({n} labels)" for name, n in sorted(labels.items()))
        raise SelectionError(f"several annotators labeled {root}: {listed}; pass --annotator NAME")
    return next(iter(labels))


def _comparisons(
    groups: list[GroupResult], targets: list[Any], alpha: float
) -> list[dict[str, Any]]:
    """Each pair of groups, then each group against each preset, as `compare` reports them.

    Groups are named by their value (`model=m1`): the annotator is the same on every side."""
    sides = [(group.label, group.labeled) for group in groups]
    pairs = list(combinations(sides, 2)) + [
        (side, (f"preset {target.id}", target)) for side in sides for target in targets
    ]
    out = []
    for (name_a, a), (name_b, b) in pairs:
        entry: dict[str, Any] = {"a": name_a, "b": name_b}
        matrices = []
        for name, side in ((name_a, a), (name_b, b)):
            if isinstance(side, CountedSelection):
                stuck = never_left(side.transition_counts())
                if stuck and alpha == 0:
                    entry["skipped"] = (
                        f"{name}: no transition out of {', '.join(stuck)}; "
                        "pass --alpha 0.001 to smooth"
                    )
                matrices.append(transition_matrix(side.transition_counts(), alpha))
            else:
                matrices.append(side.P)
        if "skipped" not in entry:
            entry.update(compare(*matrices))
        out.append(entry)
    return out
