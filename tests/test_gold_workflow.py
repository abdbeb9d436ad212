"""The gold-dataset workflow end to end: packs with overlap and QC, labeling in the packs through
the labeling service, merging (twice), adjudication and the Hugging Face dataset export."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from bondscope.cli import cli
from bondscope.domain import BEHAVIORS
from bondscope.services import labeling
from bondscope.services.adjudication import GOLD, decide, disputes
from bondscope.store import Store
from click.testing import CliRunner
from huggingface_hub import DatasetCard
from sklearn.metrics import cohen_kappa_score

from tests.helpers import dump, write_jsonl

MODEL = "model:kw@1"
STEPS = 5


def run(*args: object, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def corpus(n: int, prefix: str = "t", gold: tuple[int, ...] = ()) -> list[dict]:
    """n traces of five steps; model suggestions everywhere, `gold` labels on some traces."""
    records = []
    for i in range(n):
        parts = [
            f"Trace {prefix}{i}, step {k}: we compute {i * 7 + k} carefully." for k in range(5)
        ]
        text = "\n\n".join(parts)
        steps, start = [], 0
        for part in parts:
            steps.append({"start": start, "end": start + len(part)})
            start += len(part) + 2
        labels = [
            {"step": k, "behavior": BEHAVIORS[(i + k) % 4], "annotator": MODEL, "confidence": 0.6}
            for k in range(STEPS)
        ]
        if i in gold:
            labels += [
                {"step": k, "behavior": expected_gold(i, k), "annotator": GOLD}
                for k in range(STEPS)
            ]
        source, license_ = ("unit-b", "apache-2.0") if i % 4 == 3 else ("unit-a", "mit")
        records.append(
            {
                "format": "bondscope-jsonl/1",
                "id": f"{prefix}{i}",
                "text": text,
                "model": "m",
                "source": source,
                "question": f"q{i}",
                "steps": steps,
                "labels": labels,
                "meta": {"license": license_},
            }
        )
    return records


def expected_gold(trace: int, step: int) -> str:
    return BEHAVIORS[(trace * 3 + step) % 4]


def label_pack(path: Path, annotator: str, choose) -> dict[tuple[str, int], str]:
    """Label every step of a pack as the app would; returns what was chosen."""
    chosen = {}
    with Store(path) as pack:
        for trace_id in pack.trace_ids():
            name = pack.conn.execute("SELECT name FROM traces WHERE id = ?", (trace_id,)).fetchone()
            for idx, (step_id, _) in enumerate(pack.active_steps(trace_id)):
                behavior = choose(name[0], idx)
                labeling.set_label(pack, step_id, annotator, behavior, seconds=2.0 + idx)
                chosen[(name[0], idx)] = behavior
    return chosen


def current(db: Path, annotator: str) -> dict[tuple[str, int], str]:
    conn = sqlite3.connect(db)
    try:
        return {
            (name, step): behavior
            for name, step, behavior in conn.execute(
                "SELECT t.name, l.step, l.behavior FROM current_labels l "
                "JOIN traces t ON t.id = l.trace_id WHERE l.annotator = ?",
                (annotator,),
            )
        }
    finally:
        conn.close()


def alice_choice(trace: str, step: int) -> str:
    i = int(trace[1:])
    if i == 6:  # a QC trace: right on four steps of five
        right = expected_gold(6, step)
        return right if step else ("N" if right != "N" else "D")
    return BEHAVIORS[(i + step) % 4]  # confirms the model's suggestion


def bob_choice(trace: str, step: int) -> str:
    i = int(trace[1:])
    if i == 7:  # QC: all right
        return expected_gold(7, step)
    if i in (0, 1) and step in (1, 3):  # disagrees with alice on four overlap steps
        return "R" if BEHAVIORS[(i + step) % 4] != "R" else "E"
    return BEHAVIORS[(i + step) % 4]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    db = tmp_path / "lab.bondscope"
    data = write_jsonl(tmp_path / "corpus.jsonl", corpus(8, gold=(6, 7)))
    run("import", data, "--db", db)
    return db


def test_packs_merge_adjudicate_export(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # a local folder needs no network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    alice_pack, bob_pack = tmp_path / "alice-1.bondscope", tmp_path / "bob-1.bondscope"
    created = json.loads(
        run("pack", "create", "--db", project, "--annotator", "alice", "--traces", 3, "--qc", 1,
            "--prelabels", "--out", alice_pack, "--json").output
    )  # fmt: skip
    assert (created["work"], created["overlap"], created["qc"], created["qc_steps"]) == (3, 0, 1, 5)
    assert created["prelabels"] == MODEL
    created = json.loads(
        run("pack", "create", "--db", project, "--annotator", "bob", "--traces", 2,
            "--overlap", 2, "--qc", 1, "--out", bob_pack, "--json").output
    )  # fmt: skip
    assert (created["work"], created["overlap"], created["qc"]) == (2, 2, 1)

    with Store(project) as store:
        roles = {
            (pack, name): role
            for pack, name, role in store.conn.execute(
                "SELECT p.name, t.name, pt.role FROM pack_traces pt JOIN packs p ON p.id = "
                "pt.pack_id JOIN traces t ON t.id = pt.trace_id"
            )
        }
    assert roles == {
        ("alice-1", "t0"): "work", ("alice-1", "t1"): "work", ("alice-1", "t2"): "work",
        ("alice-1", "t6"): "qc", ("bob-1", "t3"): "work", ("bob-1", "t4"): "work",
        ("bob-1", "t0"): "overlap", ("bob-1", "t1"): "overlap", ("bob-1", "t7"): "qc",
    }  # fmt: skip

    # A pack holds its traces and the suggestions, never the gold labels, nothing marks QC.
    with Store(alice_pack) as pack:
        names = [row[0] for row in pack.conn.execute("SELECT name FROM traces ORDER BY id")]
        annotators = {row[0] for row in pack.conn.execute("SELECT annotator FROM current_labels")}
        assert pack.count("SELECT COUNT(*) FROM pack_traces") == 0
        assert pack.conn.execute("SELECT name, annotator FROM packs").fetchall() == [
            ("alice-1", "alice")
        ]
    assert sorted(names) == ["t0", "t1", "t2", "t6"] and names != sorted(names)
    assert annotators == {MODEL}
    with Store(bob_pack) as pack:
        assert {
            row[0] for row in pack.conn.execute("SELECT annotator FROM current_labels")
        } == set()

    alice = label_pack(alice_pack, "alice", alice_choice)
    bob = label_pack(bob_pack, "bob", bob_choice)
    with Store(alice_pack) as pack:  # a bond, and a change of mind, as in the app
        steps = pack.active_steps(pack.trace_ids(names=["t0"])[0])
        labeling.set_bond(pack, steps[2][0], steps[0][0], "hydrogen", "alice")
        labeling.set_label(pack, steps[4][0], "alice", "E", seconds=1.0)
        alice[("t0", 4)] = "E"
    with Store(bob_pack) as pack:  # someone else used bob's laptop: not merged as bob
        step_id = pack.active_steps(pack.trace_ids(names=["t3"])[0])[0][0]
        labeling.set_label(pack, step_id, "carol", "D")

    before_models = current(project, MODEL)
    merged = json.loads(
        run("pack", "merge", "--db", project, bob_pack, alice_pack, "--json").output
    )
    by_pack = {m["pack"]: m for m in merged["packs"]}
    assert [m["pack"] for m in merged["packs"]] == ["alice-1", "bob-1"]  # made first, merged first
    assert by_pack["alice-1"]["labels_added"] == 20 and by_pack["alice-1"]["bonds_added"] == 1
    assert by_pack["bob-1"]["labels_added"] == 25
    assert by_pack["bob-1"]["ignored"] == {"carol": 1}
    assert current(project, "alice") == alice and current(project, "bob") == bob
    assert current(project, MODEL) == before_models
    assert "carol" not in {row["annotator"] for row in _labels(project)}
    with Store(project) as store:  # seconds are summed over the pack's events on the step
        seconds = store.conn.execute(
            "SELECT l.seconds FROM current_labels l JOIN traces t ON t.id = l.trace_id "
            "WHERE t.name = 't0' AND l.step = 4 AND l.annotator = 'alice'"
        ).fetchone()[0]
    assert seconds == pytest.approx(6.0 + 1.0)

    snapshot = dump(project)
    again = json.loads(run("pack", "merge", "--db", project, alice_pack, bob_pack, "--json").output)
    assert again["run_id"] is None and all(m["changes"] == 0 for m in again["packs"])
    assert dump(project) == snapshot

    # annotators: QC accuracy, time, confirm vs correct, agreement as sklearn computes it
    report = json.loads(run("annotators", "--db", project, "--json").output)
    rows = {a["name"]: a for a in report["annotators"]}
    assert rows["alice"]["qc"] == {"steps": 5, "labeled": 5, "correct": 4, "accuracy": 0.8}
    assert rows["bob"]["qc"] == {"steps": 5, "labeled": 5, "correct": 5, "accuracy": 1.0}
    assert rows["bob"]["steps"] == 25 and rows["bob"]["seconds_per_step"] == pytest.approx(4.0)
    suggestions = current(project, MODEL)
    confirmed = sum(1 for key, b in bob.items() if suggestions[key] == b)
    assert rows["bob"]["confirm"]["steps"] == confirmed
    assert rows["bob"]["correct"]["steps"] == 25 - confirmed
    shared = sorted(set(alice) & set(bob))
    expected_kappa = cohen_kappa_score([alice[k] for k in shared], [bob[k] for k in shared])
    pair = next(p for p in rows["alice"]["agreement"] if p["with"] == "bob")
    assert pair["steps"] == len(shared) == 10
    assert pair["cohen_kappa"] == pytest.approx(expected_kappa)

    # adjudicate the five overlap disagreements: one on the command line, the rest in the service
    listed = json.loads(run("adjudicate", "--db", project, "--json").output)["disputes"]
    assert sorted((d["trace"], d["step"]) for d in listed) == [
        ("t0", 1), ("t0", 3), ("t0", 4), ("t1", 1), ("t1", 3)
    ]  # fmt: skip
    assert all(d["disagreement"] == 0.5 for d in listed)
    run("adjudicate", "--db", project, "--set", "t0:1=R", "--reason", "reflects on step 0",
        "--by", "lead")  # fmt: skip
    with Store(project) as store:
        left = disputes(store)
        for d in left:
            decide(store, d.step_id, d.labels["bob"], "lead", "bob's reading")
    result = json.loads(
        run("adjudicate", "--db", project, "--accept-agreed", "--min-labels", 1, "--by", "lead",
            "--json").output
    )  # fmt: skip
    assert result["disputes"] == []
    gold = current(project, GOLD)
    assert gold[("t0", 1)] == "R"
    for trace, step in shared:
        if alice[(trace, step)] == bob[(trace, step)]:
            assert gold[(trace, step)] == alice[(trace, step)]
        elif (trace, step) != ("t0", 1):
            assert gold[(trace, step)] == bob[(trace, step)]
    assert gold[("t6", 0)] == expected_gold(6, 0)  # QC gold was never overwritten
    with Store(project) as store:
        who, why, votes = store.conn.execute(
            "SELECT a.decided_by, a.reason, a.labels FROM adjudications a JOIN label_events e "
            "ON e.id = a.event_id JOIN steps s ON s.id = e.step_id JOIN traces t "
            "ON t.id = s.trace_id WHERE t.name = 't0' AND s.idx = 1"
        ).fetchone()
    assert (who, why) == ("lead", "reflects on step 0")
    assert json.loads(votes) == {"alice": alice[("t0", 1)], "bob": bob[("t0", 1)], MODEL: "D"}

    out = tmp_path / "dataset"
    exported = json.loads(
        run("export", "--db", project, "--format", "hf-dataset", "--annotator", GOLD,
            "--out", out, "--json").output
    )  # fmt: skip
    assert exported["labels"] == len(gold) and exported["traces"] == 7  # t5 has no gold
    assert exported["license"] == ["apache-2.0", "mit"]
    assert sorted(p.name for p in out.iterdir()) == [
        ".bondscope-export.json", "README.md", "bondscope.jsonl", "data", "transition_graph.png"
    ]  # fmt: skip
    assert (out / "transition_graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "README.md").read_text(encoding="utf-8")
    counts = Counter(gold.values())
    for behavior in BEHAVIORS:
        share = f"{100 * counts[behavior] / len(gold):.1f} %"
        assert f"| {behavior} |" in card and f"| {counts[behavior]} | {share} |" in card
    assert f"| labels | {len(gold)} |" in card and "| traces | 7 |" in card
    assert "| alice | person | 20 |" in card and "0.800 (4/5)" in card and "1.000 (5/5)" in card
    assert f"{len(gold)} gold labels in the project" in card and "(lead 5), 10 imported" in card
    assert str(tmp_path) not in card and '"out": "alice-1.bondscope"' in card
    transitions = [[0] * 4 for _ in BEHAVIORS]
    for (trace, step), behavior in gold.items():
        following = gold.get((trace, step + 1))
        if following:
            transitions[BEHAVIORS.index(behavior)][BEHAVIORS.index(following)] += 1
    for behavior, row in zip(BEHAVIORS, transitions, strict=True):
        assert f"| {behavior} | {' | '.join(map(str, row))} |" in card

    _check_loads(out, gold)

    by_alice = tmp_path / "alice-dataset"
    run("export", "--db", project, "--format", "hf-dataset", "--annotator", "alice",
        "--license", "cc-by-4.0", "--out", by_alice)  # fmt: skip
    card = DatasetCard.load(by_alice / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert [c["config_name"] for c in card.data.configs] == ["traces", "steps", "labels", "bonds"]
    assert len(pd.read_parquet(by_alice / "data" / "bonds.parquet")) == 1

    refused = run("export", "--db", project, "--format", "hf-dataset", "--out", out, ok=False)
    assert refused.exit_code == 1 and "already exists" in refused.output
    run("export", "--db", project, "--format", "hf-dataset", "--out", out, "--overwrite")
    (out / "notes.txt").write_text("mine")
    refused = run(
        "export", "--db", project, "--format", "hf-dataset", "--out", out, "--overwrite", ok=False
    )
    assert "notes.txt" in refused.output and (out / "notes.txt").exists()


def _labels(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM current_labels")]
    finally:
        conn.close()


def _check_loads(out: Path, gold: dict[tuple[str, int], str]) -> None:
    """datasets reads every config of the folder, pandas the tables, huggingface_hub the card."""
    import datasets

    card = DatasetCard.load(out / "README.md")
    assert card.data.license == ["apache-2.0", "mit"]
    assert card.data.task_categories == ["text-classification"]
    assert card.data.size_categories == ["n<1K"]
    configs = [c["config_name"] for c in card.data.configs]
    assert configs == ["traces", "steps", "labels"]  # no bonds: an empty split cannot load
    sizes = {}
    for config in configs:
        loaded = datasets.load_dataset(
            str(out), config, split="train", cache_dir=str(out.parent / "hf-cache")
        )
        frame = pd.read_parquet(out / "data" / f"{config}.parquet")
        assert loaded.num_rows == len(frame)
        assert loaded.column_names == list(frame.columns)
        sizes[config] = loaded.num_rows
    assert sizes == {"traces": 7, "steps": 35, "labels": len(gold)}
    assert pd.read_parquet(out / "data" / "bonds.parquet").empty
    labels = datasets.load_dataset(
        str(out), "labels", split="train", cache_dir=str(out.parent / "hf-cache")
    )
    assert {(r["trace_id"], r["step"]): r["behavior"] for r in labels} == gold
    assert set(labels["annotator_kind"]) == {"person"}
    steps = pd.read_parquet(out / "data" / "steps.parquet")
    assert len(steps) == 35


def test_pack_from_another_project_is_refused(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.bondscope"
    run("import", write_jsonl(tmp_path / "other.jsonl", corpus(3, prefix="x")), "--db", other)
    pack = tmp_path / "x-alice.bondscope"
    run("pack", "create", "--db", other, "--annotator", "alice", "--out", pack)
    label_pack(pack, "alice", lambda trace, step: "N")
    before = dump(project)
    result = run("pack", "merge", "--db", project, pack, ok=False)
    assert result.exit_code == 1
    assert "is from another project: 3 of its 3 traces are not in lab.bondscope" in result.output
    assert dump(project) == before
    not_a_pack = run("pack", "merge", "--db", project, other, ok=False)
    assert "is not a Bondscope work pack" in not_a_pack.output
    assert dump(project) == before


def test_pack_create_refuses_bad_requests(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.bondscope"
    before = dump(project)
    for args, message in (
        (("--annotator", GOLD), "holds the QC labels"),
        (("--annotator", "a", "--qc", 1, "--qc-from", "nobody"), "no trace has labels by 'nobody'"),
        (("--annotator", "a", "--prelabels", "model:none@0"), "no model annotator"),
        (("--annotator", "a", "--where", "colour=red"), "unknown field 'colour'"),
        (("--annotator", "a", "--where", "meta.license=gpl"), "no trace to put in the pack"),
    ):
        result = run("pack", "create", "--db", project, *args, "--out", out, ok=False)
        assert result.exit_code == 1 and message in result.output, result.output
        assert not out.exists()
    assert dump(project) == before
    made = json.loads(
        run("pack", "create", "--db", project, "--annotator", "a", "--where", "source=unit-b",
            "--out", out, "--json").output
    )  # fmt: skip
    assert made["traces"] == 1  # t3 (t7 is gold, so it is not fresh work)
    again = run("pack", "create", "--db", project, "--annotator", "b", "--out", out, ok=False)
    assert "already exists" in again.output


def test_adjudicate_interactively(project: Path) -> None:
    with Store(project) as store:
        steps = store.active_steps(store.trace_ids(names=["t5"])[0])
        for idx, (step_id, _) in enumerate(steps[:3]):
            labeling.set_label(store, step_id, "alice", "N")
            labeling.set_label(store, step_id, "bob", "D" if idx else "N")
    listed = json.loads(run("adjudicate", "--db", project, "--json").output)["disputes"]
    assert [(d["trace"], d["step"], d["labels"]) for d in listed] == [
        ("t5", 1, {"alice": "N", "bob": "D"}),
        ("t5", 2, {"alice": "N", "bob": "D"}),
    ]
    result = CliRunner().invoke(
        cli,
        ["adjudicate", "--db", str(project), "-i", "--by", "lead"],
        input="d\nbuilds on step 0\ns\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "decided 1 steps as lead" in result.output and "1 disputed steps" in result.output
    assert current(project, GOLD)[("t5", 1)] == "D"
    bad = run("adjudicate", "--db", project, "--set", "t5:2=X", ok=False)
    assert bad.exit_code == 2 and "TRACE:STEP=BEHAVIOR" in bad.output
    missing = run("adjudicate", "--db", project, "--set", "t5:99=N", ok=False)
    assert missing.exit_code == 1 and "no step 99" in missing.output


def test_pack_where_reads_metadata_like_every_other_where(tmp_path: Path) -> None:
    """`pack create --where meta.correct=true` selects JSON booleans, as `export --where` does."""
    records = corpus(4)
    for i, record in enumerate(records):
        record["meta"]["correct"] = i % 2 == 0
    db = tmp_path / "p.bondscope"
    run("import", write_jsonl(tmp_path / "c.jsonl", records), "--db", db)
    made = json.loads(
        run("pack", "create", "--db", db, "--annotator", "a", "--where", "meta.correct=true",
            "--where", "name=t*", "--out", tmp_path / "a.bondscope", "--json").output
    )  # fmt: skip
    with Store(tmp_path / "a.bondscope") as pack:
        names = sorted(row[0] for row in pack.conn.execute("SELECT name FROM traces"))
    assert made["traces"] == 2 and names == ["t0", "t2"]
