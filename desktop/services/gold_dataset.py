"""A gold dataset people can load: `bondscope export --format hf-dataset`.

The folder follows Hugging Face's conventions, so `huggingface-cli upload` takes it as is and
`datasets.load_dataset(DIR, "steps")` reads it: the Parquet tables of the `parquet` exporter under
`data/`, the lossless `bondscope-jsonl` file beside them, and a dataset card `README.md` whose YAML
front matter declares one config per table, the license, task category and size category; its
body gives counts, the behavior distribution, the transition graph (`transition_graph.png`),
agreement, annotators with QC accuracy, sources with licenses, and provenance.

Only traces with labels by the chosen annotators (default `gold`) are exported. A source's license
is the `license` its traces carry in `meta` (importers or `--option` can set it), or `--license`.
Writing goes through services/exporting.py: staged, manifest, the same `--overwrite` rules.
"""

from __future__ import annotations

import io
import json
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from bondscope import __version__
from bondscope.domain import BEHAVIOR_NAMES, BEHAVIORS, InputError
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.adjudication import GOLD, adjudication_summary, default_annotators
from bondscope.services.agreement import agreement
from bondscope.services.annotators import annotator_report
from bondscope.services.exporting import check_target, write_staged
from bondscope.services.structure import SelectionError, transition_matrix
from bondscope.store import Store

HF_DATASET = "hf-dataset"
TABLES = ("traces", "steps", "labels", "bonds")
JSONL_NAME = "bondscope.jsonl"
GRAPH_NAME = "transition_graph.png"
SIZE_CATEGORIES = (  # the Hub's buckets, by number of labels
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
RUNS_SHOWN = 30


@dataclass
class DatasetReport:
    out: str
    format: str
    traces: int
    steps: int
    labels: int
    bonds: int
    license: list[str]
    figures: dict[str, Any]


def export_hf_dataset(
    store: Store,
    plugins: Plugins,
    out: Path,
    *,
    annotators: list[str] | None = None,
    trace_ids: list[int] | None = None,
    license: str | None = None,
    overwrite: bool = False,
    command: str = "",
    progress: Progress | None = None,
) -> DatasetReport:
    """Write the dataset folder `out` (see the module docstring)."""
    progress = progress or NullProgress()
    annotators = annotators or [GOLD]
    parquet = plugins.get("exporter", "parquet")
    jsonl = plugins.get("exporter", "bondscope-jsonl")
    check_target(out, store.path, parquet, overwrite)
    marks = ", ".join("?" * len(annotators))
    labeled = {
        row[0]
        for row in store.conn.execute(
            f"SELECT DISTINCT trace_id FROM current_labels WHERE annotator IN ({marks})",
            annotators,
        )
    }
    selected = trace_ids if trace_ids is not None else store.trace_ids()
    ids = [t for t in selected if t in labeled]
    if not ids:
        who = ", ".join(annotators)
        hint = " (adjudicate first: `bondscope adjudicate`)" if annotators == [GOLD] else ""
        raise InputError(f"no selected trace has labels by {who}{hint}; nothing was written")
    figures = dataset_figures(store, ids, annotators, license)
    progress.start(f"exporting ({HF_DATASET})", 2 * len(ids))

    def traces():
        for trace in store.iter_traces(ids, annotators):
            check_cancelled(progress)
            yield trace
            progress.advance(1)

    def write(target: Path) -> None:
        target.mkdir()
        plugins.call("exporter", "parquet", parquet.export, traces(), target / "data")
        plugins.call("exporter", "bondscope-jsonl", jsonl.export, traces(), target / JSONL_NAME)
        (target / GRAPH_NAME).write_bytes(transition_graph_png(figures))
        (target / "README.md").write_text(dataset_card(figures, command), encoding="utf-8")

    write_staged(out, HF_DATASET, write)
    counts = figures["counts"]
    return DatasetReport(
        str(out),
        HF_DATASET,
        counts["traces"],
        counts["steps"],
        counts["labels"],
        counts["bonds"],
        figures["license"],
        figures,
    )


def dataset_figures(
    store: Store, trace_ids: list[int], annotators: list[str], license: str | None
) -> dict[str, Any]:
    """Every number the card shows, read from the project for the exported traces."""
    conn = store.conn
    chosen = json.dumps(trace_ids)
    in_traces = "trace_id IN (SELECT value FROM json_each(?))"
    marks = ", ".join("?" * len(annotators))
    label_rows = conn.execute(
        f"SELECT annotator, trace_id, step, behavior FROM current_labels WHERE {in_traces}"
        f" AND annotator IN ({marks}) ORDER BY annotator, trace_id, step",
        [chosen, *annotators],
    ).fetchall()
    behaviors = dict.fromkeys(BEHAVIORS, 0)
    transitions = np.zeros((4, 4), dtype=np.int64)
    previous = None
    for annotator, trace, step, behavior in label_rows:
        behaviors[behavior] += 1
        if previous is not None and previous[:3] == (annotator, trace, step - 1):
            transitions[BEHAVIORS.index(previous[3]), BEHAVIORS.index(behavior)] += 1
        previous = (annotator, trace, step, behavior)
    sources: dict[str, dict[str, Any]] = {}
    for source, meta in conn.execute(
        "SELECT source, meta FROM traces WHERE id IN (SELECT value FROM json_each(?))"
        " ORDER BY source",
        (chosen,),
    ):
        entry = sources.setdefault(source, {"traces": 0, "licenses": set()})
        entry["traces"] += 1
        declared = json.loads(meta).get("license")
        if isinstance(declared, str) and declared.strip():
            entry["licenses"].add(declared.strip().lower())
    for entry in sources.values():
        entry["licenses"] = sorted(entry["licenses"]) or ([license] if license else ["unknown"])
    licenses = (
        [license] if license else sorted({x for e in sources.values() for x in e["licenses"]})
    )
    people = default_annotators(store)
    try:
        agreed = agreement(store, people) if len(people) >= 2 else None
    except SelectionError:
        agreed = None
    return {
        "annotators_exported": annotators,
        "counts": {
            "traces": len(trace_ids),
            "steps": store.count(f"SELECT COUNT(*) FROM active_steps WHERE {in_traces}", (chosen,)),
            "labeled_steps": len({(t, s) for _, t, s, _ in label_rows}),
            "labels": len(label_rows),
            "bonds": store.count(
                f"SELECT COUNT(*) FROM current_bonds WHERE {in_traces} AND annotator IN ({marks})",
                (chosen, *annotators),
            ),
        },
        "behaviors": behaviors,
        "transitions": transitions.tolist(),
        "agreement": agreed,
        "annotators": annotator_report(store)["annotators"],
        "adjudication": adjudication_summary(store),
        "sources": sources,
        "license": licenses,
        "runs": [
            {"id": r[0], "kind": r[1], "started_at": r[2], "params": json.loads(r[3])}
            for r in conn.execute(
                "SELECT id, kind, started_at, params FROM runs WHERE status = 'done' ORDER BY id"
            )
        ],
    }


def size_category(n: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if n < limit:
            return name
    return "100M<n<1B"


def front_matter(figures: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata, in the keys and values the Hugging Face Hub understands."""
    licenses = figures["license"]
    return {
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "task_categories": ["text-classification"],
        "tags": ["chain-of-thought", "reasoning", "bondscope"],
        "pretty_name": "Bondscope reasoning-behavior labels",
        "size_categories": [size_category(figures["counts"]["labels"])],
        "configs": [
            {
                "config_name": table,
                "data_files": [{"split": "train", "path": f"data/{table}.parquet"}],
                **({"default": True} if table == "labels" else {}),
            }
            for table in TABLES
            if figures["counts"][table]  # `datasets` cannot load an empty split
        ],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def dataset_card(figures: dict[str, Any], command: str) -> str:
    """README.md: YAML front matter, then the figures as Markdown tables."""
    counts, behaviors = figures["counts"], figures["behaviors"]
    total = sum(behaviors.values())
    who = ", ".join(figures["annotators_exported"])
    lines = [
        "---",
        yaml.safe_dump(front_matter(figures), sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        "# Bondscope reasoning-behavior labels",
        "",
        f"Step-level behavior labels of long chain-of-thought traces by {who}: each step of a "
        "trace is N (normal operation), D (deep reasoning), R (self-reflection) or E "
        "(self-exploration). Made with Bondscope.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'labels = load_dataset("path/to/this/folder", "labels", split="train")',
        'steps = load_dataset("path/to/this/folder", "steps", split="train")',
        "```",
        "",
        "The tables join on `trace_id` and `step`. `bondscope.jsonl` holds the same data in "
        "Bondscope's lossless interchange format (`bondscope import bondscope.jsonl`).",
        "",
        *(
            [
                f"Empty tables ({', '.join(empty)}) are in `data/` but have no config: `datasets` "
                "cannot load an empty split.",
                "",
            ]
            if (empty := [t for t in TABLES if not counts[t]])
            else []
        ),  # fmt: skip
        "## Counts",
        "",
        *_table(["what", "count"], [[k, v] for k, v in counts.items()]),
        "## Behavior distribution",
        "",
        *_table(
            ["behavior", "meaning", "labels", "share"],
            [
                [b, BEHAVIOR_NAMES[b], n, f"{100 * n / total:.1f} %" if total else "–"]
                for b, n in behaviors.items()
            ],
        ),
        "## Transitions",
        "",
        f"![transition graph]({GRAPH_NAME})",
        "",
        "Counts of consecutive labeled steps, from (rows) to (columns):",
        "",
        *_table(
            ["from \\ to", *BEHAVIORS],
            [[b, *row] for b, row in zip(BEHAVIORS, figures["transitions"], strict=True)],
        ),
    ]
    lines += _agreement_section(figures["agreement"])
    lines += [
        "## Annotators",
        "",
        *_table(
            [
                "annotator",
                "kind",
                "steps",
                "s/step",
                "confirmed (s/step)",
                "corrected (s/step)",
                "QC accuracy (correct/labeled)",
            ],
            [
                [
                    a["name"],
                    a["kind"],
                    a["steps"],
                    a["seconds_per_step"],
                    f"{a['confirm']['steps']} ({_cell(a['confirm']['seconds_per_step'])})",
                    f"{a['correct']['steps']} ({_cell(a['correct']['seconds_per_step'])})",
                    f"{_cell(a['qc']['accuracy'])} ({a['qc']['correct']}/{a['qc']['labeled']})"
                    if a["qc"]["steps"]
                    else "–",
                ]
                for a in figures["annotators"]
            ],
        ),  # fmt: skip
    ]
    adjudicated = figures["adjudication"]
    decided = ", ".join(f"{by} {n}" for by, n in adjudicated["decided_by"].items()) or "nobody"
    lines += [
        "## Adjudication",
        "",
        f"{adjudicated['gold_labels']} gold labels in the project: {adjudicated['agreed']} where "
        f"the annotators agreed, {adjudicated['decided']} decided by an adjudicator ({decided}), "
        f"{adjudicated['gold_labels'] - adjudicated['agreed'] - adjudicated['decided']} imported "
        "or labeled as gold directly.",
        "",
        "## Sources and licenses",
        "",
        f"License of this dataset: {', '.join(figures['license'])}.",
        "",
        *_table(
            ["source", "traces", "license"],
            [
                [s or "(none)", e["traces"], ", ".join(e["licenses"])]
                for s, e in figures["sources"].items()
            ],
        ),  # fmt: skip
        "## Provenance",
        "",
        f"- Bondscope {__version__}, exported {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- command: `{shlex.join(public(shlex.split(command))) or 'bondscope export'}`",
        "",
        "Runs recorded in the project (imports, pre-labeling, packs, merges):",
        "",
    ]
    runs = figures["runs"]
    lines += _table(
        ["run", "kind", "started", "parameters"],
        [[r["id"], r["kind"], r["started_at"], json.dumps(public(r["params"]), sort_keys=True)]
         for r in runs[-RUNS_SHOWN:]],
    )  # fmt: skip
    if len(runs) > RUNS_SHOWN:
        lines += [f"({len(runs) - RUNS_SHOWN} earlier runs not shown.)", ""]
    return "\n".join(lines)


def public(value: Any) -> Any:
    """Absolute paths cut to their file name: a published card should not show a lab's disks."""
    if isinstance(value, str) and Path(value).is_absolute():
        return Path(value).name
    if isinstance(value, dict):
        return {key: public(item) for key, item in value.items()}
    if isinstance(value, list):
        return [public(item) for item in value]
    return value


def _agreement_section(agreed: dict[str, Any] | None) -> list[str]:
    if agreed is None:
        return ["## Agreement", "", "Fewer than two people labeled: no agreement to report.", ""]
    return [
        "## Agreement",
        "",
        f"Between the people who labeled ({agreed['steps_rated_twice']} steps labeled by two or "
        f"more): Krippendorff's alpha {_cell(agreed['krippendorff_alpha'])}, Gwet's AC1 "
        f"{_cell(agreed['gwet_ac1'])}.",
        "",
        *_table(
            ["pair", "steps", "observed", "Cohen's kappa", "Gwet's AC1"],
            [
                [f"{p['a']} / {p['b']}", p["steps"], p["observed"], p["cohen_kappa"], p["gwet_ac1"]]
                for p in agreed["pairs"]
                if p["steps"]
            ],
        ),  # fmt: skip
    ]


def transition_graph_png(figures: dict[str, Any]) -> bytes:
    """The behavior graph: node area ~ share of labels, arrow width ~ P(to | from)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    counts = np.array(figures["transitions"], dtype=float)
    P = transition_matrix(counts)
    shares = np.array(list(figures["behaviors"].values()), dtype=float)
    shares = shares / shares.sum() if shares.sum() else shares
    where = {"N": (0.0, 1.0), "D": (1.0, 0.0), "R": (0.0, -1.0), "E": (-1.0, 0.0)}
    colors = {"N": "#9e9e9e", "D": "#1f77b4", "R": "#d62728", "E": "#2ca02c"}
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-1.6, 1.6)
    axes.set_ylim(-1.6, 1.6)
    axes.set_aspect("equal")
    axes.axis("off")
    for i, a in enumerate(BEHAVIORS):
        for j, b in enumerate(BEHAVIORS):
            if i == j or P[i, j] < 0.01:
                continue
            axes.add_patch(
                FancyArrowPatch(
                    where[a], where[b], connectionstyle="arc3,rad=0.18", arrowstyle="-|>",
                    mutation_scale=12, linewidth=0.5 + 6 * P[i, j], color=colors[a], alpha=0.7,
                    shrinkA=28, shrinkB=28,
                )
            )  # fmt: skip
            mid = (np.array(where[a]) + np.array(where[b])) / 2
            normal = np.array([where[b][1] - where[a][1], where[a][0] - where[b][0]]) * 0.12
            axes.text(*(mid + normal), f"{100 * P[i, j]:.0f}%", fontsize=7, ha="center")
    for i, b in enumerate(BEHAVIORS):
        x, y = where[b]
        axes.scatter([x], [y], s=300 + 3000 * shares[i], color=colors[b], zorder=3)
        axes.text(x, y, b, fontsize=14, ha="center", va="center", color="white", zorder=4)
        axes.text(x, y - 0.32, f"{100 * shares[i]:.0f}% · stay {100 * P[i, i]:.0f}%",
                  fontsize=7, ha="center", zorder=4)  # fmt: skip
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
