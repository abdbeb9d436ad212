"""SIGKILL at random moments while labeling, importing, pre-labeling and synthesizing.

Each round forks a child that works on a real project file and reports ("acks") what it has
committed on a pipe; the parent kills it with SIGKILL after a random delay and checks the file:
`PRAGMA integrity_check` is ok, every acknowledged label is there, an import is all or nothing,
a pre-label batch is whole, and a synthesis run resumes to completion. Bounded by a number of
kills and a number of seconds per kind; the counts are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.labeling import set_label
from bondscope.services.prelabeling import prelabel
from bondscope.services.synthesis import (
    Connection,
    SynthesisSettings,
    graph_from_preset,
    plan_run,
    read_questions,
    run_synthesis,
)
from bondscope.store import Store

from tests.chat_server import ChatServer
from tests.helpers import bare_record, write_jsonl
from tests.test_synthesis import FAST, write_step

KILLS = 20  # per kind
SECONDS = 12.0  # per kind, whatever the count reached
MIN_KILLS = 3  # kills that landed mid-work, even on a loaded (or idle) machine


def kill_at_random(work: Callable[[Callable[[str], None]], None], delay: float) -> list[str]:
    """Fork a child running `work(ack)`; SIGKILL it after `delay` s; the lines it acked (the
    last one is "finished" if it ended before the kill)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, then leave without any of pytest's cleanup
        os.close(read_end)
        code = 1
        try:
            out = os.fdopen(write_end, "w", buffering=1)
            work(lambda line: out.write(line + "\n"))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([read_end], [], [], left)
        if ready:
            data = os.read(read_end, 1 << 16)
            if not data:
                chunks.append(b"\nfinished\n")  # the child ended before its kill
                break
            chunks.append(data)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while data := os.read(read_end, 1 << 16):
        chunks.append(data)
    os.close(read_end)
    return [line for line in b"".join(chunks).decode().splitlines() if line]


def rounds(rng: random.Random, low: float, high: float):
    """Delays for up to KILLS kills within SECONDS."""
    began = time.monotonic()
    for _ in range(KILLS):
        if time.monotonic() - began > SECONDS:
            return
        yield rng.uniform(low, high)


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def traces_file(path: Path, prefix: str, count: int) -> Path:
    text = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = {}."
    return write_jsonl(
        path,
        [bare_record(id=f"{prefix}-{i}", text=text.format(f"{prefix}-{i}")) for i in range(count)],
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    db = tmp_path / "p.db"
    with Store(db) as store:
        import_paths(
            store,
            Plugins(load_entry_points=False),
            [traces_file(tmp_path / "base.jsonl", "base", 200)],
        )
    return db


def test_killed_while_labeling_loses_no_acknowledged_label(project):
    rng = random.Random(1)
    with Store(project) as store:
        step_ids = [r[0] for r in store.conn.execute("SELECT id FROM steps")]
    acked: dict[int, tuple[int, str]] = {}
    kills = 0

    def label(ack):
        worker = random.Random(os.getpid())
        with Store(project) as store:
            while True:
                step, behavior = worker.choice(step_ids), worker.choice("NDRE")
                ack(f"{set_label(store, step, 'alice', behavior)} {step} {behavior}")

    for delay in rounds(rng, 0.3, 0.8):
        for line in kill_at_random(label, delay):
            event, step, behavior = line.split()
            acked[int(event)] = (int(step), behavior)
        kills += 1
        assert integrity(project) == "ok"
    with Store(project) as store:
        stored = {
            r[0]: (r[1], r[2])
            for r in store.conn.execute("SELECT id, step_id, behavior FROM label_events")
        }
    assert kills >= MIN_KILLS and len(acked) > kills
    assert all(stored.get(event) == value for event, value in acked.items())
    report(kills=kills, kind="labeling", acknowledged=len(acked))


def test_killed_while_importing_leaves_no_half_import(project, tmp_path):
    rng = random.Random(2)
    files = 0
    kills = 0
    for n, delay in enumerate(rounds(rng, 0.02, 0.4)):
        batch = [traces_file(tmp_path / f"r{n}-{j}.jsonl", f"r{n}-{j}", 300) for j in range(3)]

        def load(ack, batch=batch):
            with Store(project) as store:
                for path in batch:
                    import_paths(store, Plugins(load_entry_points=False), [path])
                    ack(path.stem)

        acked = set(kill_at_random(load, delay))
        kills += "finished" not in acked
        assert integrity(project) == "ok"
        with Store(project) as store:
            for path in batch:
                stored = store.count(
                    "SELECT COUNT(*) FROM traces WHERE name GLOB ?", (f"{path.stem}-*",)
                )
                assert stored in (0, 300), (path, stored)  # all or nothing
                assert stored == 300 or path.stem not in acked
                files += stored == 300
    assert kills >= MIN_KILLS
    report(kills=kills, kind="import", acknowledged=files)


def test_killed_while_prelabeling_keeps_whole_batches(project):
    rng = random.Random(3)
    kills = 0

    def run(ack):
        with Store(project) as store:
            prelabel(store, Plugins(load_entry_points=False), "keywords", batch_traces=4)
            ack("done")

    for delay in rounds(rng, 0.01, 0.15):
        kills += "finished" not in kill_at_random(run, delay)
        assert integrity(project) == "ok"
    with Store(project) as store:
        steps = dict(store.conn.execute("SELECT trace_id, COUNT(*) FROM steps GROUP BY trace_id"))
        per_run_trace = store.conn.execute(
            "SELECT e.run_id, s.trace_id, COUNT(*) FROM label_events e "
            "JOIN steps s ON s.id = e.step_id WHERE e.run_id IS NOT NULL "
            "GROUP BY e.run_id, s.trace_id"
        ).fetchall()
        with store.transaction():
            store.start_run("check", {})  # marks the killed runs
        statuses = [
            r[0] for r in store.conn.execute("SELECT status FROM runs WHERE kind = 'prelabel'")
        ]
    assert kills >= MIN_KILLS and per_run_trace
    assert all(count == steps[trace] for _, trace, count in per_run_trace)  # whole traces only
    assert set(statuses) <= {"done", "interrupted"} and "interrupted" in statuses
    report(kills=kills, kind="pre-label", acknowledged=len(per_run_trace))


def test_killed_synthesis_resumes_to_the_same_corpus(tmp_path):
    rng = random.Random(4)
    db = tmp_path / "s.db"
    questions = read_questions(
        write_jsonl(
            tmp_path / "q.jsonl",
            [{"question": f"Question {i}", "answer": str(2 * i)} for i in range(9)],
        )
    )

    def slow_writer(body, n):
        action = write_step(body)
        action.delay = 0.03
        return action

    kills = 0
    with ChatServer(slow_writer) as server:
        connection = Connection(server.url, "writer", options=FAST)
        plugins = Plugins(load_entry_points=False)
        with Store(db) as store:
            run_id = plan_run(
                store,
                plugins,
                questions,
                graph_from_preset("qwq-32b"),
                SynthesisSettings(seed=5),
                connection,
            )

        def resume(ack):
            with Store(db) as store:
                run_synthesis(store, Plugins(load_entry_points=False), run_id, connection)
                ack("done")

        for delay in rounds(rng, 0.05, 0.3):
            if "finished" in kill_at_random(resume, delay):
                break
            kills += 1
            assert integrity(db) == "ok"
        with Store(db) as store:
            report_ = run_synthesis(store, plugins, run_id, connection)  # whatever is left
            status = store.conn.execute(
                "SELECT status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()[0]
            steps = store.conn.execute(
                "SELECT item, COUNT(*), MAX(idx) FROM synthesis_steps WHERE run_id = ? "
                "GROUP BY item",
                (run_id,),
            ).fetchall()
            metas = [
                json.loads(r[0])["mole_syn"] for r in store.conn.execute("SELECT meta FROM traces")
            ]
    assert kills >= 3 and status == "done" and report_.traces == 9
    assert all(count == top + 1 for _, count, top in steps)  # no step lost or written twice
    assert sorted(m["item"] for m in metas) == list(range(9))
    report(kills=kills, kind="synthesis", acknowledged=len(metas))


def report(**figures: object) -> None:
    """One line per kind in the test log (-rA), the figures docs/reliability.md quotes."""
    print("crash-kill", json.dumps(figures, sort_keys=True))
