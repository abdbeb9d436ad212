import sqlite3

import pytest
from bondscope.store import SCHEMA_VERSION, Store, StoreError


def test_new_project_has_schema_wal_and_foreign_keys(tmp_path):
    with Store(tmp_path / "p.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.journal_mode == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert {
            "traces",
            "steps",
            "annotators",
            "label_events",
            "bond_events",
            "models",
            "runs",
        } <= set(store.db.table_names())
        assert {"current_labels", "current_bonds", "active_steps"} <= set(store.db.view_names())


def test_reopening_does_not_migrate_twice(tmp_path):
    Store(tmp_path / "p.db").close()
    with Store(tmp_path / "p.db") as store:
        assert store.count("SELECT COUNT(*) FROM schema_version") == 1


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "p.db").close()
    conn = sqlite3.connect(tmp_path / "p.db")
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "p.db")


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="not a usable Bondscope project"):
        Store(path)


def test_missing_project_without_create(tmp_path):
    with pytest.raises(StoreError, match="no such project file"):
        Store(tmp_path / "missing.db", create=False)


def test_transaction_rolls_back_everything_including_savepoints(tmp_path):
    with Store(tmp_path / "p.db") as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.annotator_id("alice")
            with store.transaction():
                store.annotator_id("bob")
            raise RuntimeError("boom")
        assert store.count("SELECT COUNT(*) FROM annotators") == 0
        with store.transaction():
            store.annotator_id("carol")
            with pytest.raises(RuntimeError), store.transaction():
                store.annotator_id("dave")
                raise RuntimeError("inner only")
        names = [r[0] for r in store.conn.execute("SELECT name FROM annotators")]
        assert names == ["carol"]


def test_label_events_are_append_only_with_a_current_view(tmp_path):
    with Store(tmp_path / "p.db") as store, store.transaction():
        store.conn.execute(
            "INSERT INTO traces (id, name, content_hash, text, created_at) "
            "VALUES (1, 't', 'h', 'abc def', 'now')"
        )
        store.conn.execute('INSERT INTO steps (id, trace_id, idx, start, "end") VALUES (1,1,0,0,3)')
        alice = store.annotator_id("alice")
        model = store.annotator_id("model:kw@1")
        for behavior in ("N", "R", "D"):
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at) "
                "VALUES (1, ?, ?, 'now')",
                (alice, behavior),
            )
        store.conn.execute(
            "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, created_at) "
            "VALUES (1, ?, 'E', 0.5, 'now')",
            (model,),
        )
        rows = store.conn.execute(
            "SELECT annotator, annotator_kind, behavior FROM current_labels ORDER BY annotator"
        ).fetchall()
        assert rows == [("alice", "person", "D"), ("model:kw@1", "model", "E")]
        assert store.count("SELECT COUNT(*) FROM label_events") == 4
        with pytest.raises(sqlite3.IntegrityError):
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at) "
                "VALUES (1, ?, 'X', 'now')",
                (alice,),
            )
        with pytest.raises(sqlite3.IntegrityError):  # foreign key: no such step
            store.conn.execute(
                "INSERT INTO label_events (step_id, annotator_id, behavior, created_at) "
                "VALUES (99, ?, 'N', 'now')",
                (alice,),
            )
