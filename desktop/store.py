"""One SQLite file per project, through sqlite-utils.

Labels and bonds are append-only events; the `current_labels` and `current_bonds` views show the
latest event per (step, annotator) and per (edge, annotator). That gives an audit trail, undo that
survives restarts, and agreement between annotators without extra bookkeeping.

Every mutation runs inside `Store.transaction()`, so a failure leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bondscope.domain import Bond, Label, Step, Trace, is_model_annotator
from bondscope.metafilter import MetaFilter, conditions
from sqlite_utils import Database

SCHEMA_VERSION_TABLE = "schema_version"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Like executescript, but inside the caller's transaction (executescript commits first)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def _migration_1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE traces (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            question TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            given_steps TEXT,
            meta TEXT NOT NULL DEFAULT '{}',
            run_id INTEGER REFERENCES runs(id),
            created_at TEXT NOT NULL
        );
        CREATE INDEX traces_model ON traces(model);
        CREATE INDEX traces_source ON traces(source);
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            retired_run_id INTEGER REFERENCES runs(id),
            CHECK ("end" > start)
        );
        CREATE INDEX steps_trace ON steps(trace_id, idx);
        CREATE TABLE annotators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'model')),
            meta TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            path TEXT,
            sha256 TEXT,
            card TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            UNIQUE (name, version)
        );
        CREATE TABLE label_events (
            id INTEGER PRIMARY KEY,
            step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            behavior TEXT CHECK (behavior IS NULL OR behavior IN ('N', 'D', 'R', 'E')),
            confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
            seconds REAL,
            run_id INTEGER REFERENCES runs(id),
            reverts INTEGER REFERENCES label_events(id),
            created_at TEXT NOT NULL
        );
        CREATE INDEX label_events_latest ON label_events(step_id, annotator_id, id);
        CREATE INDEX label_events_annotator ON label_events(annotator_id, id);
        CREATE TABLE bond_events (
            id INTEGER PRIMARY KEY,
            from_step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
            to_step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
            type TEXT NOT NULL CHECK (type IN ('covalent', 'hydrogen', 'vdw')),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            present INTEGER NOT NULL DEFAULT 1 CHECK (present IN (0, 1)),
            run_id INTEGER REFERENCES runs(id),
            reverts INTEGER REFERENCES bond_events(id),
            created_at TEXT NOT NULL,
            CHECK (from_step_id != to_step_id)
        );
        CREATE INDEX bond_events_latest
            ON bond_events(from_step_id, to_step_id, type, annotator_id, id);
        CREATE INDEX bond_events_to ON bond_events(to_step_id);
        CREATE INDEX bond_events_annotator ON bond_events(annotator_id, id);

        CREATE VIEW active_steps AS
            SELECT * FROM steps WHERE retired_run_id IS NULL;
        CREATE VIEW current_labels AS
            SELECT s.trace_id, s.idx AS step, e.step_id, a.name AS annotator,
                   a.kind AS annotator_kind, e.behavior, e.confidence, e.seconds,
                   e.created_at, e.id AS event_id
            FROM (SELECT MAX(id) AS id FROM label_events GROUP BY step_id, annotator_id) latest
            JOIN label_events e ON e.id = latest.id
            JOIN steps s ON s.id = e.step_id AND s.retired_run_id IS NULL
            JOIN annotators a ON a.id = e.annotator_id
            WHERE e.behavior IS NOT NULL;
        CREATE VIEW current_bonds AS
            SELECT f.trace_id, f.idx AS "from", t.idx AS "to", e.type, a.name AS annotator,
                   e.from_step_id, e.to_step_id, e.created_at, e.id AS event_id
            FROM (SELECT MAX(id) AS id FROM bond_events
                  GROUP BY from_step_id, to_step_id, type, annotator_id) latest
            JOIN bond_events e ON e.id = latest.id
            JOIN steps f ON f.id = e.from_step_id AND f.retired_run_id IS NULL
            JOIN steps t ON t.id = e.to_step_id AND t.retired_run_id IS NULL
            JOIN annotators a ON a.id = e.annotator_id
            WHERE e.present = 1;
        """,
    )


def _migration_synthesis(conn: sqlite3.Connection) -> None:
    """MOLE-SYN runs: each planned item and each generated step, written as it arrives, so an
    interrupted `bondscope synthesize` resumes where it stopped (services/synthesis.py)."""
    _run_script(
        conn,
        """
        CREATE TABLE synthesis_items (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            item INTEGER NOT NULL,
            question TEXT NOT NULL,
            gold TEXT,
            walk TEXT NOT NULL,
            trace_id INTEGER REFERENCES traces(id) ON DELETE SET NULL,
            stop TEXT,
            PRIMARY KEY (run_id, item)
        );
        CREATE TABLE synthesis_steps (
            run_id INTEGER NOT NULL,
            item INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            behavior TEXT NOT NULL CHECK (behavior IN ('N', 'D', 'R', 'E')),
            text TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, item, idx),
            FOREIGN KEY (run_id, item) REFERENCES synthesis_items(run_id, item) ON DELETE CASCADE
        );
        """,
    )


def _migration_gold(conn: sqlite3.Connection) -> None:
    """Work packs, their quality-control steps and adjudications (services/packs.py,
    services/adjudication.py). A pack file holds one `packs` row, origin 'self', describing
    itself; the project that made it holds origin 'created' with what went in, roles included."""
    _run_script(
        conn,
        """
        CREATE TABLE packs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            annotator TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('created', 'self')),
            prelabels TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            run_id INTEGER REFERENCES runs(id),
            created_at TEXT NOT NULL
        );
        CREATE TABLE pack_traces (
            pack_id INTEGER NOT NULL REFERENCES packs(id) ON DELETE CASCADE,
            trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('work', 'overlap', 'qc')),
            position INTEGER NOT NULL,
            PRIMARY KEY (pack_id, trace_id)
        );
        CREATE TABLE qc_labels (
            pack_id INTEGER NOT NULL REFERENCES packs(id) ON DELETE CASCADE,
            step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
            behavior TEXT NOT NULL CHECK (behavior IN ('N', 'D', 'R', 'E')),
            PRIMARY KEY (pack_id, step_id)
        );
        CREATE TABLE adjudications (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL UNIQUE REFERENCES label_events(id) ON DELETE CASCADE,
            step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
            decided_by TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            labels TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX adjudications_step ON adjudications(step_id);
        """,
    )


def _migration_run_owner(conn: sqlite3.Connection) -> None:
    """Runs record the process that owns them (`pid`, `host`), and a run whose process ended
    without finishing it (killed, power cut) gets the state `interrupted` instead of staying
    `running` forever. SQLite cannot alter a CHECK, so the table is rebuilt (foreign keys are
    off during migrations, see `Store._migrate`). Synthesized steps keep the writer's reasoning
    (a reasoning model's `reasoning_content`, or `<think>` blocks) apart from the step text."""
    _run_script(
        conn,
        """
        CREATE TABLE runs_new (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT NOT NULL DEFAULT '{}',
            pid INTEGER,
            host TEXT
        );
        INSERT INTO runs_new (id, kind, params, status, started_at, finished_at, summary)
            SELECT id, kind, params, status, started_at, finished_at, summary FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_new RENAME TO runs;
        UPDATE runs SET status = 'interrupted', finished_at = started_at WHERE status = 'running';
        ALTER TABLE synthesis_steps ADD COLUMN reasoning TEXT
        """,
    )


# Ordered: migration i brings the schema from version i-1 to version i. Never edit a released one;
# append a new function instead.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migration_1,
    _migration_synthesis,
    _migration_gold,
    _migration_run_owner,
]
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_S = 30


class StoreError(RuntimeError):
    """The project file cannot be used (newer schema, not a Bondscope file, ...)."""


class StoreBusy(StoreError):
    """Another process kept the project's write lock for longer than the busy timeout."""


def _is_locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Store:
    """A project: one SQLite file opened with WAL, foreign keys and a busy timeout."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"{self.path}: no such project file")
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.db = Database(conn, execute_plugins=False)
        self.conn = conn
        self._depth = 0
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            if self.db.journal_mode != "wal":
                self.db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            conn.execute("PRAGMA foreign_keys = ON")
        except StoreError:
            conn.close()
            raise
        except sqlite3.OperationalError as error:
            conn.close()
            if _is_locked(error):
                raise StoreBusy(f"{self.path}: {_busy_message()}") from None
            raise StoreError(f"{self.path}: not a usable Bondscope project ({error})") from error
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreError(f"{self.path}: not a usable Bondscope project ({error})") from error

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        if not self.db[SCHEMA_VERSION_TABLE].exists():
            return 0
        row = self.conn.execute(f"SELECT version FROM {SCHEMA_VERSION_TABLE}").fetchone()
        return row[0] if row else 0

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION. An up-to-date file is only read, never locked, so
        opening a project never waits for a writer; an older one is backed up first."""
        current = self._checked_version()
        if current == SCHEMA_VERSION:
            return
        if current > 0:
            from bondscope.backups import backup

            backup(self, reason=f"before-migration-{current}-to-{SCHEMA_VERSION}")
        with self.transaction():  # foreign keys are still off: migrations may rebuild tables
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION_TABLE} (version INTEGER NOT NULL)"
            )
            current = self._checked_version()  # another process may have migrated meanwhile
            for migration in MIGRATIONS[current:]:
                migration(self.conn)
            if current == 0:
                self.conn.execute(
                    f"INSERT INTO {SCHEMA_VERSION_TABLE} (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif current < SCHEMA_VERSION:
                self.conn.execute(
                    f"UPDATE {SCHEMA_VERSION_TABLE} SET version = ?", (SCHEMA_VERSION,)
                )
            problems = self.conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise StoreError(f"{self.path}: migration broke references: {problems[:3]}")

    def _checked_version(self) -> int:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer Bondscope (schema version {current}; this "
                f"version understands up to {SCHEMA_VERSION}); upgrade Bondscope to open it"
            )
        return current

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One all-or-nothing unit of work; nested calls become savepoints."""
        if self._depth == 0:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if _is_locked(error):
                    raise StoreBusy(f"{self.path}: {_busy_message()}") from None
                raise
        else:
            self.conn.execute(f"SAVEPOINT sp{self._depth}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute(f"ROLLBACK TO sp{self._depth}")
                self.conn.execute(f"RELEASE sp{self._depth}")
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute(f"RELEASE sp{self._depth}")

    # -- runs and annotators -------------------------------------------------------------------

    def start_run(self, kind: str, params: dict[str, Any]) -> int:
        """A new `running` run owned by this process (call inside a transaction)."""
        self.mark_interrupted_runs()
        cursor = self.conn.execute(
            "INSERT INTO runs (kind, params, started_at, pid, host) VALUES (?, ?, ?, ?, ?)",
            (kind, json.dumps(params, sort_keys=True), now(), os.getpid(), socket.gethostname()),
        )
        return int(cursor.lastrowid)

    def claim_run(self, run_id: int) -> None:
        """Mark an earlier run `running` again, owned by this process (a resumed synthesis)."""
        self.conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, pid = ?, host = ? "
            "WHERE id = ?",
            (os.getpid(), socket.gethostname(), run_id),
        )

    def mark_interrupted_runs(self) -> int:
        """`running` runs of this machine whose process is gone become `interrupted`.

        Runs of another host are left alone: their process cannot be checked from here.
        """
        host = socket.gethostname()
        stale = [
            run_id
            for run_id, pid in self.conn.execute(
                "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)
            ).fetchall()
            if pid is None or (pid != os.getpid() and not _process_alive(pid))
        ]
        self.conn.executemany(
            "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ?",
            [(now(), run_id) for run_id in stale],
        )
        return len(stale)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
            (status, now(), json.dumps(summary, sort_keys=True), run_id),
        )

    def annotator_id(self, name: str, kind: str | None = None) -> int:
        """The id of an annotator, created on first use; its kind by domain.is_model_annotator."""
        row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        kind = "model" if is_model_annotator(name, kind or None) else "person"
        cursor = self.conn.execute(
            "INSERT INTO annotators (name, kind, created_at) VALUES (?, ?, ?)", (name, kind, now())
        )
        return int(cursor.lastrowid)

    # -- reading -------------------------------------------------------------------------------

    def trace_ids(
        self,
        *,
        model: str | None = None,
        source: str | None = None,
        names: list[str] | None = None,
        pattern: str | None = None,
        meta: tuple[MetaFilter, ...] = (),
    ) -> list[int]:
        """Ids of the traces matching every filter given, in insertion order.

        `pattern` is a glob on the trace name (`*` and `?`), e.g. `deepseek-r1-distill-*`;
        `meta` holds `--where meta.KEY=VALUE` conditions (bondscope.metafilter).
        """
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if names is not None:
            clauses.append("name IN (SELECT value FROM json_each(?))")  # any number of names
            params.append(json.dumps(names))
        if pattern is not None:
            clauses.append("name GLOB ?")
            params.append(pattern)
        meta_clauses, meta_params = conditions("meta", meta)
        clauses += meta_clauses
        params += meta_params
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [
            r[0] for r in self.conn.execute(f"SELECT id FROM traces {where} ORDER BY id", params)
        ]

    def active_steps(self, trace_id: int) -> list[tuple[int, Step]]:
        """(step id, span) of the trace's current segmentation, in order."""
        rows = self.conn.execute(
            'SELECT id, start, "end" FROM steps WHERE trace_id = ? AND retired_run_id IS NULL '
            "ORDER BY idx",
            (trace_id,),
        )
        return [(row[0], Step(row[1], row[2])) for row in rows]

    def trace_current_labels(self, trace_id: int) -> dict[tuple[int, str], tuple[str, float]]:
        """(step id, annotator) -> (behavior, confidence) of one trace's current labels.

        The same rows as `current_labels WHERE trace_id = ?`, but through the per-step index:
        the view groups the whole project's events first, which takes seconds in a large one.
        """
        rows = self.conn.execute(
            "SELECT e.step_id, a.name, e.behavior, e.confidence FROM label_events e "
            "JOIN annotators a ON a.id = e.annotator_id "
            "WHERE e.step_id IN "
            "  (SELECT id FROM steps WHERE trace_id = ? AND retired_run_id IS NULL) "
            "AND e.id = (SELECT MAX(x.id) FROM label_events x "
            "            WHERE x.step_id = e.step_id AND x.annotator_id = e.annotator_id) "
            "AND e.behavior IS NOT NULL",
            (trace_id,),
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def trace_current_bonds(self, trace_id: int) -> set[tuple[int, int, str, str]]:
        """(from step id, to step id, type, annotator) of one trace's current bonds (see
        `trace_current_labels` for why not the view)."""
        rows = self.conn.execute(
            "SELECT e.from_step_id, e.to_step_id, e.type, a.name FROM bond_events e "
            "JOIN annotators a ON a.id = e.annotator_id "
            "JOIN steps t ON t.id = e.to_step_id AND t.retired_run_id IS NULL "
            "WHERE e.from_step_id IN "
            "  (SELECT id FROM steps WHERE trace_id = ? AND retired_run_id IS NULL) "
            "AND e.id = (SELECT MAX(x.id) FROM bond_events x "
            "            WHERE x.from_step_id = e.from_step_id AND x.to_step_id = e.to_step_id "
            "            AND x.type = e.type AND x.annotator_id = e.annotator_id) "
            "AND e.present = 1",
            (trace_id,),
        )
        return {(r[0], r[1], r[2], r[3]) for r in rows}

    def load_trace(self, trace_id: int, annotators: list[str] | None = None) -> Trace:
        """The trace with its current steps, labels and bonds (optionally of some annotators)."""
        row = self.conn.execute(
            "SELECT name, text, question, model, source, answer, meta FROM traces WHERE id = ?",
            (trace_id,),
        ).fetchone()
        if row is None:
            raise KeyError(trace_id)
        steps = [span for _, span in self.active_steps(trace_id)]
        annotator_filter, params = "", [trace_id]
        if annotators is not None:
            annotator_filter = f" AND annotator IN ({', '.join('?' * len(annotators))})"
            params += annotators
        labels = [
            Label(*r)
            for r in self.conn.execute(
                "SELECT step, behavior, annotator, confidence, seconds, created_at "
                "FROM current_labels "
                f"WHERE trace_id = ?{annotator_filter} ORDER BY step, annotator",
                params,
            )
        ]
        bonds = [
            Bond(r[0], r[1], r[2], r[3])
            for r in self.conn.execute(
                'SELECT "from", "to", type, annotator FROM current_bonds '
                f'WHERE trace_id = ?{annotator_filter} ORDER BY "from", "to", type, annotator',
                params,
            )
        ]
        named = sorted({lb.annotator for lb in labels} | {b.annotator for b in bonds})
        kinds = dict(
            self.conn.execute(
                f"SELECT name, kind FROM annotators WHERE name IN ({', '.join('?' * len(named))})",
                named,
            )
        )
        return Trace(
            id=row[0],
            text=row[1],
            question=row[2],
            model=row[3],
            source=row[4],
            answer=row[5],
            steps=steps,
            labels=labels,
            bonds=bonds,
            meta=json.loads(row[6]),
            annotator_kinds={name: kinds[name] for name in named},
        )

    def iter_traces(
        self, trace_ids: list[int] | None = None, annotators: list[str] | None = None
    ) -> Iterator[Trace]:
        for trace_id in trace_ids if trace_ids is not None else self.trace_ids():
            yield self.load_trace(trace_id, annotators)

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(sql, params).fetchone()[0])


def _busy_message() -> str:
    return (
        f"the project is busy: another Bondscope process has been writing to it for over "
        f"{BUSY_TIMEOUT_S} s; nothing was changed, try again when it has finished"
    )
