"""Pre-labeling throughput: the end-to-end ONNX pre-labeler vs sentence-transformers on PyTorch.

    .venv/bin/python benchmarks/prelabel.py               # the seed gold set's 2,512 steps
    .venv/bin/python benchmarks/prelabel.py --limit 400   # a quicker run
    .venv/bin/python benchmarks/prelabel.py --model-dir DIR --provider cuda

Both sides get the same step texts in the same run. The baseline is `SentenceTransformer.encode`
(PyTorch, batch 32, `torch.set_num_threads(threads)`): only the encoder, no head. The pre-labeler
side is the whole `StepClassifier.predict_proba`: tokenize, ONNX encoder, context features, head.
It is measured for int8/fp32, batch sizes, length sorting on/off and threads (batches run at once,
one intra-op thread each), after one warm-up call each. The machine this runs on is shared, so the
baseline and every configuration are measured in turn, `--rounds` times, and the medians are
reported: of each rate, and of each round's ratio to that round's baseline. Budget (design.md):
on CPU with 2 cores, >= 2x the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bondscope.domain import Trace
from bondscope.models.classifier import StepClassifier, default_model_dir, step_texts
from bondscope.plugins.bondscope_jsonl import BondscopeJsonl

SEED = Path(__file__).resolve().parents[1] / "resources" / "seed" / "seed-gold.jsonl"
BUDGET_RATIO = 2.0


def load_traces(limit: int | None) -> list[Trace]:
    traces, steps = [], 0
    for trace in BondscopeJsonl().read(SEED, {}):
        traces.append(trace)
        steps += len(trace.steps)
        if limit is not None and steps >= limit:
            break
    return traces


def seconds(function) -> float:  # noqa: ANN001 - a no-argument call
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="stop after about this many steps")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--provider", default="cpu", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="measure everything this many times")
    args = parser.parse_args()
    folder = args.model_dir or default_model_dir()
    if folder is None:
        raise SystemExit("no shipped model; pass --model-dir (a `bondscope train` output folder)")
    traces = load_traces(args.limit)
    texts = [t for trace in traces for t in step_texts(trace)]
    steps = len(texts)
    print(
        f"{len(traces)} traces, {steps} steps; {args.threads} threads; cpu_count={os.cpu_count()}"
    )

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from bondscope.models.weights import default_weights_dir
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    device = "cuda" if args.provider != "cpu" and torch.cuda.is_available() else "cpu"
    st = SentenceTransformer(str(default_weights_dir()), device=device, local_files_only=True)
    runs = {"baseline": lambda: st.encode(texts, batch_size=32, normalize_embeddings=True)}
    names = {"baseline": f"sentence-transformers encode (PyTorch, {device}, batch 32)"}

    configs = [
        ("int8", None, True, args.threads),  # the defaults, what `bondscope prelabel` runs
        ("int8", 16, True, args.threads),
        ("int8", 64, False, args.threads),
        ("int8", None, True, 1),
        ("fp32", 16, True, args.threads),
    ]
    if args.provider != "cpu":
        configs = [(None, 256, True, args.threads), (None, 1024, True, args.threads)]
    for variant, batch, sort, threads in configs:
        classifier = StepClassifier(
            folder,
            provider=args.provider,
            variant=variant,
            threads=threads,
            batch_size=batch,
            sort_by_length=sort,
        )
        encoder = classifier.featurize.encoder
        key = f"{encoder.variant}/{encoder.batch_size}/{sort}/{threads}"
        runs[key] = lambda c=classifier: c.predict_proba(traces)
        names[key] = (
            f"pre-labeler end to end ({encoder.provider}, {encoder.variant}, batch "
            f"{encoder.batch_size}{' (default)' if batch is None else ''}, "
            f"{'length-sorted' if sort else 'unsorted'}, {threads} threads)"
        )
    for run in runs.values():
        run()  # warm-up: sessions, thread pools, first allocations
    rates: dict[str, list[float]] = {key: [] for key in runs}
    for round_ in range(args.rounds):
        for key, run in runs.items():
            rates[key].append(steps / seconds(run))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        shown = "; ".join(f"{rates[key][-1]:,.0f}" for key in runs)
        print(f"round {round_ + 1} (load average {load}): {shown} steps/s", flush=True)
    baseline = rates["baseline"]
    ratios = {}
    for key in runs:
        ratios[key] = statistics.median(r / b for r, b in zip(rates[key], baseline, strict=True))
        print(
            f"{names[key]}: median {statistics.median(rates[key]):,.0f} steps/s "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates[key])}) = {ratios[key]:.2f}x"
        )
    default = ratios[list(runs)[1]]  # the first configuration: the default settings
    verdict = "meets" if default >= BUDGET_RATIO else "MISSES"
    print(
        f"default settings: median {default:.2f}x the baseline; {verdict} the "
        f">= {BUDGET_RATIO:.0f}x budget (best: {max(list(ratios.values())[1:]):.2f}x)"
    )


if __name__ == "__main__":
    main()
