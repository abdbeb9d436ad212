"""The store under contention and across versions (reliability issue, findings 3, 4, 5 and 9,
and the backups): readers never wait for writers, a busy project gives one clear line, runs of a
dead process become `interrupted`, migrations back the file up first, newer files are refused."""

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from bondscope import backups
from bondscope import store as store_module
from bondscope.cli import cli
from bondscope.domain import Step
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.labeling import set_label
from bondscope.services.segmenting import resegment
from bondscope.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreBusy, StoreError
from click.testing import CliRunner

from tests.helpers import bare_record, dump, record, write_jsonl


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def project(tmp_path, records=None):
    db = tmp_path / "p.db"
    data = write_jsonl(tmp_path / "t.jsonl", records or [record()])
    with Store(db) as store:
        import_paths(store, Plugins(load_entry_points=False), [data])
    return db


def hold_write_lock(db):
    """Another process's long write: a connection inside BEGIN IMMEDIATE."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO annotators (name, created_at) VALUES ('writer', 'now')")
    return other


def test_opening_and_reading_never_wait_for_a_writer(tmp_path):
    """Finding 4: `Store()` checked migrations inside BEGIN IMMEDIATE, so `stats` and `metrics`
    waited out the busy timeout (30 s) behind any long write, then failed."""
    db = project(tmp_path)
    writer = hold_write_lock(db)
    try:
        began = time.perf_counter()
        result = run("stats", "--db", db, "--json")
        assert time.perf_counter() - began < 5
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["traces"] == 1
        result = run("metrics", "transition-matrix", "--db", db, "--annotator", "alice")
        assert result.exit_code == 0, result.output
    finally:
        writer.rollback()
        writer.close()


def test_a_busy_project_gives_one_line_and_the_run_of_a_dead_process_is_interrupted(
    tmp_path, monkeypatch
):
    """Finding 5: a locked database made `prelabel` print a raw traceback; killed runs stayed
    `running` forever."""
    db = project(tmp_path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 1)
    writer = hold_write_lock(db)
    try:
        result = run("prelabel", "--db", db, "--labeler", "keywords")
        assert result.exit_code == 1
        assert "busy" in result.output and "Traceback" not in result.output
        assert "database is locked" not in result.output
        with Store(db) as store, pytest.raises(StoreBusy, match="nothing was changed"):
            set_label(store, 1, "alice", "D")
    finally:
        writer.rollback()
        writer.close()
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from bondscope.store import Store\n"
            "store = Store(sys.argv[1])\n"
            "with store.transaction():\n"
            "    store.start_run('prelabel', {})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            str(db),
        ],
        check=False,
    )
    assert killed.returncode == -9
    with Store(db) as store:
        assert store.count("SELECT COUNT(*) FROM runs WHERE status = 'running'") == 1
        with store.transaction():
            mine = store.start_run("prelabel", {})
        statuses = dict(store.conn.execute("SELECT id, status FROM runs").fetchall())
    assert statuses[mine] == "running"  # this process is alive: its run is left alone
    assert sorted(statuses.values()) == ["done", "interrupted", "running"]


def test_reimporting_duplicates_reads_only_their_own_trace(tmp_path):
    """Finding 3: each duplicate scanned the project-wide label/bond views, so re-importing into
    a large project held the write lock for minutes. The work per duplicate (SQLite VM steps)
    must not grow with the project."""

    def work_to_reimport(folder, traces):
        folder.mkdir()
        records = [record(id=f"t{i}", text=record()["text"] + f" ({i})") for i in range(traces)]
        db = project(folder, records)
        again = write_jsonl(folder / "again.jsonl", records[:20])
        with Store(db) as store:
            ticks = [0]

            def tick():
                ticks[0] += 1

            store.conn.set_progress_handler(tick, 1000)
            report = import_paths(store, Plugins(load_entry_points=False), [again])
            store.conn.set_progress_handler(None, 0)
        assert report.duplicates == 20 and report.labels == 0
        return ticks[0]

    small = work_to_reimport(tmp_path / "small", 100)
    large = work_to_reimport(tmp_path / "large", 1500)
    assert large < 2 * small, (small, large)


def test_resegmenting_more_steps_than_sql_variables(tmp_path):
    """Finding 9: re-segmenting bound one SQL variable per retired step, and failed with "too
    many SQL variables" past SQLite's limit (250,000 in this build; lowered here to 100)."""
    text = "".join(
        f"Step {i}: we add the values carefully here. Then we check it again.\n\n"
        for i in range(300)
    )
    db = project(tmp_path, [bare_record(id="long", text=text.strip())])
    with Store(db) as store:
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
        plugins = Plugins(load_entry_points=False)
        before = store.active_steps(1)
        with store.transaction():
            for step_id, _ in before:
                set_label(store, step_id, "alice", "N")
        report = resegment(store, plugins, "sentence")
        assert report.steps_retired == len(before) == 300
        assert len(report.dropped) == 300
        assert len(store.active_steps(1)) == 600
        assert store.active_steps(1)[0][1] == Step(0, text.index("here.") + len("here."))


def make_old_project(path, version):
    """A project as a Bondscope of schema `version` wrote it, with a run and a trace."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("BEGIN")
    for migration in MIGRATIONS[:version]:
        migration(conn)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    conn.execute("INSERT INTO runs (kind, started_at) VALUES ('prelabel', 'then')")
    conn.execute(
        "INSERT INTO traces (name, content_hash, text, run_id, created_at) "
        "VALUES ('old', 'h', 'old text', 1, 'then')"
    )
    conn.execute("COMMIT")
    conn.close()


def test_an_older_project_is_backed_up_then_migrated_and_a_newer_one_refused(tmp_path):
    db = tmp_path / "old.db"
    make_old_project(db, 2)
    before = dump(db)
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        run_row = store.conn.execute("SELECT status, pid FROM runs").fetchone()
        assert run_row == ("interrupted", None)  # its process is long gone
        assert store.count("SELECT COUNT(*) FROM traces WHERE run_id = 1") == 1
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    saved = backups.list_backups(db)
    assert len(saved) == 1 and "before-migration-2-to-" in saved[0].name
    assert dump(saved[0]) == before  # the backup is the file as the old version left it

    newer = tmp_path / "newer.db"
    Store(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    untouched = dump(newer)
    result = run("stats", "--db", newer)
    assert result.exit_code == 1
    assert "newer Bondscope" in result.output and "upgrade" in result.output
    assert dump(newer) == untouched


def test_backup_and_restore_commands(tmp_path):
    db = project(tmp_path)
    with Store(db) as store:
        set_label(store, 1, "alice", "D")
    result = run("backup", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.output)["backup"]
    with Store(db) as store:
        set_label(store, 1, "alice", "E")
        labeled = dump(db)
    assert run("backup", "--db", db, "--out", first).exit_code == 1  # never overwrites one

    result = run("restore", "--db", db, first, "--json")
    assert result.exit_code == 0, result.output
    previous = json.loads(result.output)["previous"]
    with Store(db) as store:
        behavior = store.conn.execute(
            "SELECT behavior FROM current_labels WHERE step_id = 1 AND annotator = 'alice'"
        ).fetchone()[0]
    assert behavior == "D"
    assert dump(previous) == labeled  # what the restore replaced is kept

    not_a_project = tmp_path / "notes.db"
    not_a_project.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    before = dump(db)
    result = run("restore", "--db", db, not_a_project)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert dump(db) == before


def test_backups_rotate(tmp_path):
    db = project(tmp_path)
    with Store(db) as store:
        for n in range(backups.KEEP + 3):
            backups.backup(store, reason=f"n{n}")
    kept = backups.list_backups(db)
    assert len(kept) == backups.KEEP
    assert kept[-1].name.endswith(f"n{backups.KEEP + 2}.db")
    with pytest.raises(StoreError, match="itself"):
        backups.restore(db, db)


def test_a_long_resegmentation_lets_other_writers_in_between_batches(tmp_path):
    """Long writers commit in chunks: between batches another process gets the write lock at
    once (busy timeout 0), so the app's keystrokes never wait for the whole run."""
    texts = [f"Step one of {i}. Then two.\n\nAnd a second paragraph {i}." for i in range(150)]
    db = project(tmp_path, [bare_record(id=f"t{i}", text=t) for i, t in enumerate(texts)])
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    got_in = []

    class Probe:
        def start(self, label, total):
            pass

        def advance(self, amount=1, note=""):
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                got_in.append(True)
            except sqlite3.OperationalError:
                got_in.append(False)

        def cancelled(self):
            return False

    with Store(db) as store:
        report = resegment(store, Plugins(load_entry_points=False), "sentence", progress=Probe())
    other.close()
    assert report.changed == 150 and len(got_in) >= 3 and all(got_in)
