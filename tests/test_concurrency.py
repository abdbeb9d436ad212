"""Several processes on one project at once, as when the app is open while the CLI imports and
pre-labels: a labeling writer (the app's keystrokes), an importing writer, a pre-labeling writer
and a reader (`stats`). No error reaches any of them, no update is lost, and the longest wait for
a keystroke stays far below the busy timeout (the figures are in docs/reliability.md)."""

from __future__ import annotations

import json
import os
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.labeling import set_label
from bondscope.services.prelabeling import prelabel
from bondscope.services.stats import project_stats
from bondscope.store import BUSY_TIMEOUT_S, Store

from tests.test_crash_kill import traces_file

LABELS = 400
IMPORTS = 4
TRACES_PER_IMPORT = 400


def spawn(out: Path, work: Callable[[], dict]) -> int:
    """Fork a child that runs `work` and writes its result (or its error) to `out` as JSON."""
    pid = os.fork()
    if pid == 0:
        try:
            result = {"ok": True, **work()}
        except BaseException as error:
            result = {
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "detail": traceback.format_exc(),
            }
        out.write_text(json.dumps(result))
        os._exit(0)
    return pid


def test_two_writers_a_prelabel_and_a_reader_at_once(tmp_path):
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store,
            Plugins(load_entry_points=False),
            [traces_file(tmp_path / "base.jsonl", "base", 300)],
        )
        step_ids = [r[0] for r in store.conn.execute("SELECT id FROM steps")]
    files = [
        traces_file(tmp_path / f"new{i}.jsonl", f"new{i}", TRACES_PER_IMPORT)
        for i in range(IMPORTS)
    ]
    stop = tmp_path / "stop"

    def label() -> dict:
        rng, waits, written = random.Random(7), [], {}
        with Store(db) as store:
            for _ in range(LABELS):
                step, behavior = rng.choice(step_ids), rng.choice("NDRE")
                began = time.perf_counter()
                written[set_label(store, step, "alice", behavior)] = [step, behavior]
                waits.append(time.perf_counter() - began)
                time.sleep(0.005)  # a fast annotator
        return {"written": written, "max_wait": max(waits)}

    def load() -> dict:
        with Store(db) as store:
            for path in files:
                import_paths(store, Plugins(load_entry_points=False), [path])
        return {}

    def predict() -> dict:
        with Store(db) as store:
            report = prelabel(store, Plugins(load_entry_points=False), "keywords")
        return {"status": report.status, "traces": report.traces}

    def read() -> dict:
        reads = 0
        while not stop.exists():
            with Store(db, create=False) as store:
                project_stats(store)
            reads += 1
        return {"reads": reads}

    began = time.monotonic()
    children = {
        name: (spawn(tmp_path / f"{name}.json", work), tmp_path / f"{name}.json")
        for name, work in (
            ("label", label),
            ("import", load),
            ("prelabel", predict),
            ("read", read),
        )
    }
    for name in ("label", "import", "prelabel"):
        os.waitpid(children[name][0], 0)
    stop.touch()
    os.waitpid(children["read"][0], 0)
    seconds = time.monotonic() - began
    results = {name: json.loads(out.read_text()) for name, (_, out) in children.items()}
    for name, result in results.items():
        assert result["ok"], (name, result.get("detail"))

    with Store(db) as store:
        stored = {
            r[0]: [r[1], r[2]]
            for r in store.conn.execute(
                "SELECT e.id, e.step_id, e.behavior FROM label_events e "
                "JOIN annotators a ON a.id = e.annotator_id WHERE a.name = 'alice'"
            )
        }
        traces = store.count("SELECT COUNT(*) FROM traces")
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    written = {int(k): v for k, v in results["label"]["written"].items()}
    assert stored == written  # no keystroke lost
    assert traces == 300 + IMPORTS * TRACES_PER_IMPORT
    assert results["prelabel"]["status"] == "done"
    assert results["read"]["reads"] > 0
    assert results["label"]["max_wait"] < BUSY_TIMEOUT_S / 10
    print(
        "concurrency",
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "labels": len(written),
                "imported": IMPORTS * TRACES_PER_IMPORT,
                "prelabeled_traces": results["prelabel"]["traces"],
                "reads": results["read"]["reads"],
                "max_label_wait_s": round(results["label"]["max_wait"], 3),
                "errors": 0,
            }
        ),
    )
