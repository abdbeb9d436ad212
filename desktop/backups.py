"""Rotating project backups through SQLite's online backup API.

A backup is a consistent copy of the project taken while other processes keep working (the
backup API copies pages under a read transaction, so a half-written label is never in it). They
sit next to the project in `NAME.db.backups/`, named by UTC time and reason, and only the newest
`KEEP` are kept. The store takes one before every migration; `bondscope backup` and the app's
timer take the others; `bondscope restore` copies one back, after backing up what it replaces.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bondscope.store import Store

KEEP = 10
BACKUP_ERRORS = (OSError, sqlite3.Error)  # what a backup can fail with (disk full, I/O error...)
SUFFIX = ".db"
_REASON = re.compile(r"[^A-Za-z0-9_-]+")


def backup_folder(project: Path) -> Path:
    return project.with_name(project.name + ".backups")


def list_backups(project: Path) -> list[Path]:
    """The project's automatic backups, oldest first."""
    folder = backup_folder(project)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file())


def _copy(source: sqlite3.Connection, target_path: Path) -> None:
    target = sqlite3.connect(str(target_path))
    try:
        source.backup(target)
    finally:
        target.close()


def backup(
    store: Store, out: Path | None = None, *, reason: str = "manual", keep: int = KEEP
) -> Path:
    """Copy the open project to `out`, or into its rotating backup folder (keeping `keep`)."""
    if out is None:
        folder = backup_folder(store.path)
        folder.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        out = folder / f"{store.path.stem}-{stamp}-{_REASON.sub('-', reason)}{SUFFIX}"
    elif out.exists():
        raise FileExistsError(f"{out}: already exists; choose a new backup file")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    _copy(store.conn, partial)
    partial.replace(out)  # a crash mid-copy leaves a .partial, never a truncated backup
    if out.parent == backup_folder(store.path):
        for old in list_backups(store.path)[:-keep]:
            old.unlink()
    return out


def restore(project: Path, source: Path) -> Path:
    """Replace the project's content with the backup `source`; returns the backup of what was
    there. The source must be a sound Bondscope project this version can open."""
    from bondscope.store import SCHEMA_VERSION, Store, StoreError

    if not source.is_file():
        raise StoreError(f"{source}: no such backup file")
    if source.resolve() == project.resolve():
        raise StoreError(f"{source}: is the project itself")
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
        has_schema = check.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        row = check.execute("SELECT version FROM schema_version").fetchone() if has_schema else None
        version = row[0] if row else 0
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{source}: not a Bondscope project ({error})") from None
    finally:
        check.close()
    if verdict != "ok" or not has_schema:
        problem = verdict if verdict != "ok" else "no schema_version table"
        raise StoreError(f"{source}: not a sound Bondscope project ({problem})")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{source}: written by a newer Bondscope (schema version {version}; this version "
            f"understands up to {SCHEMA_VERSION}); upgrade Bondscope to restore it"
        )
    with Store(project, create=False) as store:
        saved = backup(store, reason="before-restore")
        source_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            source_conn.backup(store.conn)
        finally:
            source_conn.close()
    Store(project, create=False).close()  # migrates an older backup, refuses a newer one
    return saved
