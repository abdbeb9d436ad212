"""`bondscope batch` on a real local Ray (2 CPUs) against the single-machine commands.

One Ray instance serves the module (start-up costs seconds on 2 shared cores); the corpus is small
but goes through three importers (bondscope-jsonl without steps, step-lists, a Parquet export with
a person's labels), so reading, segmenting, pre-labeling, writing and counting are all the real
code paths. Every file holds a multiple of 16 traces, so the batch path groups traces for the
model exactly as `bondscope prelabel` does, and the labels must be equal step by step.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from bondscope.cli import cli
from bondscope.plugins.bondscope_jsonl import BondscopeJsonl
from bondscope.store import Store
from click.testing import CliRunner

from tests.helpers import write_jsonl

SEED = Path(__file__).resolve().parents[1] / "resources" / "seed" / "seed-gold.jsonl"
MODEL = "bondscope-minilm"
BONDSCOPE = [sys.executable, "-m", "bondscope"]


def seed_steps() -> list[str]:
    """Real step texts (the seed gold set), each one paragraph, to build traces from."""
    texts = []
    for trace in BondscopeJsonl().read(SEED, {}):
        texts += [" ".join(trace.text[s.start : s.end].split()) for s in trace.steps]
    return [text for text in texts if text]


def generated(prefix: str, n: int, model: str, split: str, seed: int) -> list[dict]:
    """n bondscope-jsonl records without steps (the batch path segments them)."""
    rng, texts = random.Random(seed), seed_steps()
    return [
        {
            "format": "bondscope-jsonl/1",
            "id": f"{prefix}-{i}",
            "source": split,
            "model": model,
            "question": f"{prefix} question {i}",
            "text": "\n\n".join(rng.choice(texts) for _ in range(rng.randint(2, 5))),
            "answer": "",
            "meta": {"split": split, "n": i},
        }
        for i in range(n)
    ]


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the cluster extra (ray[data]) is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """alpha: 32 bare records; beta: 16 step-lists records; gamma: a Parquet export of 16
    traces that carry a person's labels. meta.split equals the source in each file."""
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "alpha.jsonl", generated("a", 32, "m1", "alpha", seed=1))
    beta = [
        {"id": r["id"], "problem": r["question"], "generator": "m2", "split": "beta",
         "steps": r["text"].split("\n\n")}
        for r in generated("b", 16, "m2", "beta", seed=2)
    ]  # fmt: skip
    write_jsonl(root / "beta.jsonl", beta)
    staging = tmp_path_factory.mktemp("gamma")
    write_jsonl(staging / "gamma.jsonl", generated("g", 16, "m1", "gamma", seed=3))
    db = staging / "gamma.db"
    invoke("import", str(staging / "gamma.jsonl"), "--db", str(db))
    with Store(db) as store:  # a person labeled some steps of each trace
        rng = random.Random(4)
        alice = store.annotator_id("alice", "person")
        rows = [
            (step_id, alice, rng.choice("NDRE"), None, "2026-01-01T00:00:00Z")
            for trace_id in store.trace_ids()
            for step_id, _ in store.active_steps(trace_id)[:3]
        ]
        with store.transaction():
            store.conn.executemany(
                "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
    invoke("export", "--db", str(db), "--format", "parquet", "--out", str(root / "gamma"))
    return root


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory) -> Path:
    """The single-machine path: import the corpus, pre-label it."""
    db = tmp_path_factory.mktemp("single") / "single.db"
    invoke("import", str(corpus), "--db", str(db))
    invoke("prelabel", "--db", str(db), "--labeler", MODEL, "--provider", "cpu")
    return db


@pytest.fixture(scope="module")
def shards(ray_local, corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("batch") / "shards"
    report = invoke(
        "batch", "prelabel", "--input", str(corpus), "--output", str(out),
        "--shard-traces", "16",
    )  # fmt: skip
    return out, report


def annotator(db: Path) -> str:
    with Store(db) as store:
        (name,) = store.conn.execute(
            "SELECT name FROM annotators WHERE name LIKE 'model:%'"
        ).fetchone()
    return name


def step_labels(db: Path) -> dict[tuple[str, int, str], tuple[int, int, str, float | None]]:
    """(trace, step, annotator) -> (start, end, behavior, confidence) of a project."""
    with Store(db) as store:
        return {
            (trace.id, label.step, label.annotator): (
                trace.steps[label.step].start,
                trace.steps[label.step].end,
                label.behavior,
                label.confidence,
            )
            for trace in store.iter_traces()
            for label in trace.labels
        }


def shard_labels(out: Path) -> dict[tuple[str, int, str], tuple[int, int, str, float | None]]:
    """The same, read straight from the shards' Parquet tables."""
    found = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        steps = {
            (r["trace_id"], r["step"]): (r["start"], r["end"])
            for r in pq.read_table(folder / "steps.parquet").to_pylist()
        }
        for r in pq.read_table(folder / "labels.parquet").to_pylist():
            key = (r["trace_id"], r["step"], r["annotator"])
            assert key not in found, f"{key} is in two shards"
            found[key] = (*steps[r["trace_id"], r["step"]], r["behavior"], r["confidence"])
    return found


def assert_same_labels(expected: dict, got: dict) -> None:
    assert got.keys() == expected.keys()
    for key, (start, end, behavior, confidence) in expected.items():
        assert got[key][:3] == (start, end, behavior), key
        assert got[key][3] == pytest.approx(confidence, abs=1e-6), key


def test_batch_prelabel_labels_every_step_as_prelabel_does(single, shards):
    out, report = shards
    assert report["status"] == "done" and report["device"] == "cpu"
    assert report["traces"] == 64 and report["shards_written"] == 4  # alpha in two
    expected = step_labels(single)
    assert {key[2] for key in expected} == {"alice", annotator(single)}
    assert report["steps"] == sum(1 for key in expected if key[2] == annotator(single))
    assert_same_labels(expected, shard_labels(out))


def test_import_takes_the_shards_back(single, shards, tmp_path):
    out, _ = shards
    db = tmp_path / "back.db"
    report = invoke("import", str(out), "--db", str(db))
    assert report["traces"] == 64 and report["skipped"] == []
    assert_same_labels(step_labels(single), step_labels(db))
    with Store(db) as store, Store(single) as original:
        texts = {t.id: (t.text, t.model, t.source, t.meta) for t in store.iter_traces()}
        assert texts == {t.id: (t.text, t.model, t.source, t.meta) for t in original.iter_traces()}


def metrics_data(db: Path, name: str, *options: str) -> list[dict]:
    return invoke("metrics", name, "--db", str(db), *options)["results"]


def test_batch_metrics_equal_metrics_and_compare(single, shards):
    out, _ = shards
    model = annotator(single)
    batch = {}
    for by, single_by in (("model", "model"), ("meta.split", "source")):
        batch[by] = invoke(
            "batch", "metrics", "--input", str(out), "--by", by, "--annotator", model
        )
        groups = [entry["group"] for entry in batch[by]["results"]]
        for name in ("transition-matrix", "behavior-distribution"):
            expected = metrics_data(single, name, "--by", single_by, "--annotator", model)
            assert groups == [entry["group"] for entry in expected]
            assert [entry[name] for entry in batch[by]["results"]] == [
                entry["result"] for entry in expected
            ]
    # the pooled corpus, with the same mixing warnings, and the comparison of the two models
    pooled = invoke("batch", "metrics", "--input", str(out), "--annotator", model)
    single_pooled = invoke(
        "metrics", "transition-matrix", "--db", str(single), "--annotator", model
    )
    assert pooled["results"][0]["transition-matrix"] == single_pooled["results"][0]["result"]
    assert pooled["warnings"] == single_pooled["warnings"]
    (pair,) = batch["model"]["comparisons"]
    compared = invoke(
        "compare", "--db", str(single), "--source-model", "m1", "--annotator", model,
        "--db", str(single), "--source-model", "m2", "--annotator", model,
    )  # fmt: skip
    keys = ("pearson_r", "weighted_js_bits", "pi_l1", "verdict", "pi")
    assert {key: pair[key] for key in keys} == {key: compared[key] for key in keys}
    # the person's labels are there too, and are measured separately
    alice = invoke("batch", "metrics", "--input", str(out), "--annotator", "alice")
    single_alice = metrics_data(single, "behavior-distribution", "--annotator", "alice")
    assert alice["results"][0]["behavior-distribution"] == single_alice[0]["result"]


def test_batch_metrics_asks_for_an_annotator_when_several_labeled(ray_local, shards):
    out, _ = shards
    result = CliRunner().invoke(cli, ["batch", "metrics", "--input", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith("error: several annotators labeled")
    assert "alice" in result.output and "--annotator" in result.output
    result = CliRunner().invoke(cli, ["batch", "metrics", "--input", str(out), "--by", "meta."])
    assert result.exit_code == 1 and "model, source or meta.KEY" in result.output


def test_a_rerun_skips_written_shards_and_rewrites_a_missing_one(
    ray_local, corpus, shards, tmp_path
):
    out, _ = shards
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    args = ["batch", "prelabel", "--input", str(corpus), "--output", str(copy)]
    again = invoke(*args, "--shard-traces", "16")
    assert (again["shards_written"], again["shards_skipped"], again["workers"]) == (0, 4, 0)
    missing = sorted(p for p in copy.iterdir() if p.is_dir())[1]
    before = pq.read_table(missing / "labels.parquet")
    shutil.rmtree(missing)
    resumed = invoke(*args, "--shard-traces", "16")
    assert (resumed["shards_written"], resumed["shards_skipped"]) == (1, 3)
    assert pq.read_table(missing / "labels.parquet").equals(before)
    manifest = (copy / ".bondscope-batch.json").read_bytes()
    changed = CliRunner().invoke(cli, [*args, "--shard-traces", "32"])
    assert changed.exit_code == 1
    assert "shard_traces = 16, not 32" in changed.output and len(changed.output.splitlines()) == 1
    assert (copy / ".bondscope-batch.json").read_bytes() == manifest


def test_bad_input_is_one_line_and_leaves_no_output(ray_local, tmp_path):
    records = generated("x", 3, "m1", "alpha", seed=5)
    records[2]["text"] = ""
    write_jsonl(tmp_path / "bad.jsonl", records)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["batch", "prelabel", "--input", str(tmp_path / "bad.jsonl"), "--output", str(out)]
    )
    assert result.exit_code == 1
    assert (
        result.output
        == f"error: {tmp_path / 'bad.jsonl'}:3: field 'text': must be a non-empty string\n"
    )
    assert not out.exists()
    result = CliRunner().invoke(
        cli, ["batch", "prelabel", "--input", str(tmp_path), "--output", str(tmp_path)]
    )
    assert result.exit_code == 1 and "is not a batch output folder" in result.output


def test_ctrl_c_stops_cleanly_and_the_rerun_completes(ray_local, tmp_path):
    """Ctrl+C to a driver connected to a running cluster (the module's Ray, by address)."""
    write_jsonl(tmp_path / "many.jsonl", generated("c", 64, "m1", "alpha", seed=6))
    out = tmp_path / "out"
    address = ray_local.get_runtime_context().gcs_address
    args = ["batch", "prelabel", "--input", str(tmp_path / "many.jsonl"), "--output", str(out),
            "--shard-traces", "8", "--batch-size", "8", "--workers", "1"]  # fmt: skip
    driver = subprocess.Popen(
        [*BONDSCOPE, *args, "--ray-address", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not any(p.name.endswith("-00000") for p in out.glob("[!.]*")) and driver.poll() is None:
        assert time.monotonic() < deadline, "no shard appeared within 120 s"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGINT)  # what a terminal's Ctrl+C sends
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    assert "cancelled; the shards written so far are kept" in stderr
    assert "Traceback" not in stderr
    written = [p for p in out.iterdir() if p.is_dir()]
    assert 1 <= len(written) < 8 and not list(out.glob(".staging-*"))
    resumed = invoke(*args)
    assert resumed["shards_skipped"] == len(written)
    assert resumed["shards_written"] == 8 - len(written)
    ids = [r["trace_id"] for p in out.iterdir() if p.is_dir()
           for r in pq.read_table(p / "traces.parquet").to_pylist()]  # fmt: skip
    assert sorted(ids) == sorted(f"c-{i}" for i in range(64))


def test_without_ray_the_core_imports_and_batch_says_how_to_install(tmp_path):
    hide_ray = (
        "import sys; sys.modules['ray'] = None\n"  # `import ray` now raises ImportError
        "import bondscope.services.batch, bondscope.cli.batch\n"
        "from bondscope.plugin_manager import Plugins; assert not Plugins().failures\n"
        "from bondscope.cli import main; sys.argv = ['bondscope'] + sys.argv[1:]; main()\n"
    )
    (tmp_path / "shard").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", hide_ray, "batch", "metrics", "--input", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: this command needs Ray")
    assert 'pip install "bondscope[cluster]"' in result.stderr
