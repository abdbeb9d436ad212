"""Batch pre-labeling on a local Ray with 1 and 2 workers vs the single-process pre-label service.

    .venv/bin/python benchmarks/batch.py               # the seed gold set's 2,512 steps
    .venv/bin/python benchmarks/batch.py --repeat 3    # the same traces three times over

All three runs label the same steps in the same run, on the CPU, with the shipped model, grouped
the same way (16 traces per model call), so their labels must agree; the script checks that. The
single-process side is `services.prelabeling.prelabel` on a project that already holds the
traces (as `bondscope prelabel` runs). The batch side is `services.batch.batch_prelabel` end to
end: Ray Data reads and segments the JSONL file, the actors start and load the model, the driver
writes Parquet shards of 16 traces. The local Ray is started once, before the batch runs, and its
start-up is printed on its own. "after the first shard" is the rate once the first shard is
written, i.e. without the actors' start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from bondscope.plugin_manager import Plugins
from bondscope.plugins.bondscope_jsonl import BondscopeJsonl, record_from_trace
from bondscope.services.batch import batch_prelabel, ray_session
from bondscope.services.importing import import_paths
from bondscope.services.prelabeling import prelabel
from bondscope.store import Store

SEED = Path(__file__).resolve().parents[1] / "resources" / "seed" / "seed-gold.jsonl"
MODEL = "bondscope-minilm"


class FirstShard:
    """A Progress that notes when the first shard was written and how many steps it held."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.at: float | None = None
        self.traces = 0

    def start(self, label: str, total: int | None) -> None:
        self.began = time.perf_counter()

    def advance(self, amount: int = 1, note: str = "") -> None:
        if self.at is None:
            self.at, self.traces = time.perf_counter(), amount

    def cancelled(self) -> bool:
        return False


def write_corpus(folder: Path, repeat: int) -> Path:
    """The seed traces with their steps but without labels, `repeat` times (distinct ids)."""
    path = folder / "corpus.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for n in range(repeat):
            for trace in BondscopeJsonl().read(SEED, {}):
                trace.labels, trace.bonds = [], []
                trace.id, trace.question = f"{trace.id}#{n}", f"{trace.question} ({n})"
                handle.write(json.dumps(record_from_trace(trace), ensure_ascii=False) + "\n")
    return path


def single_process(corpus: Path, db: Path) -> tuple[int, float, dict]:
    with Store(db, create=True) as store:
        import_paths(store, Plugins(), [corpus])
        report = prelabel(store, Plugins(), MODEL, provider="cpu")
        labels = {
            (trace.id, label.step): label.behavior
            for trace in store.iter_traces(annotators=[report.annotator])
            for label in trace.labels
        }
    return report.steps, report.seconds, labels


def shard_labels(out: Path) -> dict:
    found = {}
    for folder in out.iterdir():
        if folder.is_dir():
            for row in pq.read_table(folder / "labels.parquet").to_pylist():
                found[row["trace_id"], row["step"]] = row["behavior"]
    return found


def stage_rates(corpus: Path, folder: Path) -> None:
    """Per-core rates of the parts of a batch worker that stay on the CPU when the encoder runs
    on a GPU (tokenizing, context features and head), and of the driver's shard writing.

    Each part is timed on its own (the features from encodings computed beforehand), so the
    figures do not depend on subtracting two runs made under different load."""
    from bondscope.models.classifier import StepClassifier, default_model_dir, step_texts
    from bondscope.models.features import trace_features
    from bondscope.plugins.parquet_export import ParquetExporter

    traces = list(BondscopeJsonl().read(corpus, {}))
    steps = sum(len(trace.steps) for trace in traces)
    classifier = StepClassifier(default_model_dir(), provider="cpu", threads=1)
    encoder, features = classifier.featurize.encoder, classifier.featurize.groups
    texts = [step_texts(trace) for trace in traces]

    def timed(function) -> float:  # noqa: ANN001 - a no-argument call
        function()  # warm-up
        began = time.perf_counter()
        function()
        return time.perf_counter() - began

    encodings = [encoder.encode_all(step) for step in texts]

    def context_and_head() -> None:
        for encoded, step in zip(encodings, texts, strict=True):
            classifier.head.predict_proba(trace_features(encoded, step, features))

    tokenize = timed(lambda: [encoder.tokenizer.encode_batch(step) for step in texts])
    encode = timed(lambda: [encoder.encode_all(step) for step in texts])
    context = timed(context_and_head)
    print(f"per core, {steps:,} steps (threads=1, CPU provider):")
    print(f"  ONNX encoder on the CPU, int8, tokenizing included: {steps / encode:,.0f} steps/s")
    print(
        f"  tokenize {steps / tokenize:,.0f} steps/s; context features + head "
        f"{steps / context:,.0f} steps/s; together (what stays on the CPU with a GPU encoder) "
        f"{steps / (tokenize + context):,.0f} steps/s"
    )
    payloads = [pickle.dumps(traces[at : at + 16]) for at in range(0, len(traces), 16)]
    write = timed(
        lambda: ParquetExporter().export(
            [trace for payload in payloads for trace in pickle.loads(payload)],
            folder / f"write-{time.perf_counter_ns()}",
        )
    )
    print(f"  driver: unpickle + write Parquet shard {steps / write:,.0f} steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="copies of the seed set")
    parser.add_argument("--shard-traces", type=int, default=16)
    parser.add_argument("--stages-only", action="store_true", help="only the per-core rates")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = write_corpus(folder, args.repeat)
        if args.stages_only:
            stage_rates(corpus, folder)
            return
        steps, seconds, expected = single_process(corpus, folder / "single.db")
        traces = sum(1 for _ in corpus.open(encoding="utf-8"))
        print(f"corpus: {traces} traces, {steps:,} steps; cpu_count={os.cpu_count()}")
        print(
            f"single-process prelabel ({MODEL}, cpu, all cores): {seconds:.1f} s, "
            f"{steps / seconds:,.0f} steps/s"
        )
        began = time.perf_counter()
        with ray_session(None, num_cpus=os.cpu_count()):
            print(f"local Ray start-up: {time.perf_counter() - began:.1f} s (not counted below)")
            for workers in (1, 2):
                out, progress = folder / f"shards-{workers}", FirstShard()
                report = batch_prelabel(
                    Plugins(),
                    [corpus],
                    out,
                    prelabeler=MODEL,
                    shard_traces=args.shard_traces,
                    workers=workers,
                    gpus_per_worker=0,
                    progress=progress,
                )
                end = progress.began + report.seconds
                later = steps * (1 - progress.traces / traces)  # about: shards differ in size
                steady = later / (end - progress.at) if progress.at and end > progress.at else 0
                got = shard_labels(out)
                same = sum(got.get(key) == behavior for key, behavior in expected.items())
                print(
                    f"batch, {workers} worker{'s' if workers > 1 else ''}: {report.seconds:.1f} s "
                    f"end to end, {report.steps_per_second:,.0f} steps/s; after the first shard "
                    f"(at {progress.at - progress.began:.1f} s) ~{steady:,.0f} steps/s; "
                    f"labels equal to single-process: {same:,}/{len(expected):,}"
                )
        steps, seconds, _ = single_process(corpus, folder / "again.db")
        print(f"single-process prelabel again, after the batch: {steps / seconds:,.0f} steps/s")
        stage_rates(corpus, folder)


if __name__ == "__main__":
    main()
