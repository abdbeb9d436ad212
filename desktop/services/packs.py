"""Work packs: a self-contained project file per annotator, and merging finished packs back.

A pack holds the traces one annotator should label (fresh work, traces other annotators have too,
so agreement can be measured, and quality-control traces whose steps have known gold labels, all
shuffled together and unmarked), optionally a model's suggestions, and nothing else: no other
annotator's labels. The app opens it like any project and labels as the pack's annotator.

The project that made the pack records what went in (`packs`, `pack_traces` with each trace's
role, `qc_labels` with the expected labels), so QC accuracy is measured against what the gold
labels were when the pack was made, not against later adjudications.

Merging copies the pack annotator's labels and bonds into the project wherever the project's
latest value differs, in one transaction: merging the same pack twice changes nothing, and no
other annotator's labels are touched. A pack whose traces are not all in the project was made
from another project and is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from bondscope.domain import InputError
from bondscope.metafilter import PREFIX as META_PREFIX
from bondscope.metafilter import parse_where
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.importing import ImportReport, TraceWriter
from bondscope.store import Store, StoreError, now

ROLES = ("work", "overlap", "qc")
WHERE_FIELDS = ("model", "source", "name")


@dataclass
class PackReport:
    name: str
    annotator: str
    out: str
    traces: int
    work: int
    overlap: int
    qc: int
    qc_steps: int
    steps: int
    prelabels: str | None
    overlap_asked: int
    qc_asked: int


@dataclass
class PackMerge:
    """What merging one pack changed; `ignored` counts labels by other people in the pack."""

    pack: str
    path: str
    annotator: str
    known: bool  # the pack was made by this project (its QC steps count)
    traces: int = 0
    labels_added: int = 0
    labels_changed: int = 0
    labels_cleared: int = 0
    labels_unchanged: int = 0
    bonds_added: int = 0
    bonds_removed: int = 0
    unmatched: int = 0  # labels or bonds on steps whose span the project no longer has
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return (
            self.labels_added
            + self.labels_changed
            + self.labels_cleared
            + self.bonds_added
            + self.bonds_removed
        )


@dataclass
class MergeReport:
    packs: list[PackMerge]
    run_id: int | None  # None when nothing changed (no run is recorded then)


def select_traces(store: Store, where: list[str]) -> list[int]:
    """Trace ids matching every `FIELD=VALUE`: model, source, name (a glob), or meta.KEY (matched
    as `--where meta.KEY=VALUE` everywhere else, bondscope.metafilter)."""
    selected: set[int] | None = None
    for condition in where:
        key, sep, value = condition.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"expected FIELD=VALUE, got {condition!r}", field="--where")
        if key == "name":
            ids = store.trace_ids(pattern=value)
        elif key == "model":
            ids = store.trace_ids(model=value)
        elif key == "source":
            ids = store.trace_ids(source=value)
        elif key.startswith(META_PREFIX):
            ids = store.trace_ids(meta=(parse_where(condition),))
        else:
            fields = ", ".join(WHERE_FIELDS)
            raise InputError(f"unknown field {key!r} (use {fields} or meta.KEY)", field="--where")
        selected = set(ids) if selected is None else selected & set(ids)
    return store.trace_ids() if selected is None else sorted(selected)


def pack_description(store: Store) -> tuple[str, str, str | None, str] | None:
    """(name, annotator, prelabels, created_at) when `store` is a pack file, else None."""
    row = store.conn.execute(
        "SELECT name, annotator, prelabels, created_at FROM packs WHERE origin = 'self'"
    ).fetchone()
    return tuple(row) if row else None


def create_pack(
    store: Store,
    plugins: Plugins,
    annotator: str,
    out: Path,
    *,
    traces: int | None = None,
    where: list[str] | None = None,
    overlap: int = 0,
    qc: int = 0,
    qc_from: str = "gold",
    prelabels: str | None = None,
    progress: Progress | None = None,
) -> PackReport:
    """Write `out`, a project file with one annotator's traces, and record it in `store`."""
    progress = progress or NullProgress()
    annotator = annotator.strip()
    if not annotator:
        raise InputError("must be a non-empty name", field="--annotator")
    if annotator == qc_from:
        raise InputError(f"{qc_from!r} holds the QC labels; packs are for other annotators")
    for value, name in ((traces, "--traces"), (overlap, "--overlap"), (qc, "--qc")):
        if value is not None and value < 0:
            raise InputError("must be 0 or more", field=name)
    if out.exists() or out.is_symlink():
        raise InputError("already exists; choose another pack file name", out)
    name = out.stem
    if store.count("SELECT COUNT(*) FROM packs WHERE name = ?", (name,)):
        raise InputError(f"a pack named {name!r} was made already; choose another file name", out)
    if prelabels is not None and not store.count(
        "SELECT COUNT(*) FROM annotators WHERE name = ? AND kind = 'model'", (prelabels,)
    ):
        raise InputError(f"no model annotator named {prelabels!r}", field="--prelabels")
    chosen = _choose(
        store, annotator, select_traces(store, where or []), traces, overlap, qc, qc_from
    )
    if not chosen:
        raise InputError("no trace to put in the pack (every selected trace is assigned already)")
    random.Random(name).shuffle(chosen)  # QC and overlap traces sit among the others, unmarked
    params = {
        "annotator": annotator,
        "traces": traces,
        "where": where or [],
        "overlap": overlap,
        "qc": qc,
        "qc_from": qc_from,
        "prelabels": prelabels,
        "out": str(out),
    }
    created_at = now()
    roles = [role for _, role in chosen]
    progress.start(f"writing pack {name}", len(chosen))
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with store.transaction():
            run_id = store.start_run("pack", params)
            pack_id = store.conn.execute(
                "INSERT INTO packs (name, annotator, origin, prelabels, params, run_id, created_at)"
                " VALUES (?, ?, 'created', ?, ?, ?, ?)",
                (
                    name,
                    annotator,
                    prelabels,
                    json.dumps(params, sort_keys=True),
                    run_id,
                    created_at,
                ),
            ).lastrowid
            store.conn.executemany(
                "INSERT INTO pack_traces (pack_id, trace_id, role, position) VALUES (?, ?, ?, ?)",
                [(pack_id, tid, role, i) for i, (tid, role) in enumerate(chosen)],
            )
            qc_ids = [tid for tid, role in chosen if role == "qc"]
            store.conn.execute(
                "INSERT INTO qc_labels (pack_id, step_id, behavior) SELECT ?, step_id, behavior"
                f" FROM current_labels WHERE annotator = ? AND trace_id IN"
                f" ({', '.join('?' * len(qc_ids))})",
                [pack_id, qc_from, *qc_ids],
            )
            qc_steps = store.count("SELECT COUNT(*) FROM qc_labels WHERE pack_id = ?", (pack_id,))
            steps = _write_pack_file(
                store, plugins, partial, [tid for tid, _ in chosen], name, annotator, prelabels,
                params, created_at, progress,
            )  # fmt: skip
            store.finish_run(run_id, "done", {"traces": len(chosen), "qc_steps": qc_steps})
            partial.replace(out)
    finally:
        for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return PackReport(
        name,
        annotator,
        str(out),
        len(chosen),
        roles.count("work"),
        roles.count("overlap"),
        roles.count("qc"),
        qc_steps,
        steps,
        prelabels,
        overlap,
        qc,
    )


def _choose(
    store: Store,
    annotator: str,
    candidates: list[int],
    traces: int | None,
    overlap: int,
    qc: int,
    qc_from: str,
) -> list[tuple[int, str]]:
    """(trace id, role): fresh work first in corpus order, then overlap and QC traces."""
    conn = store.conn
    assigned = {
        row[0]
        for row in conn.execute(
            "SELECT trace_id FROM pack_traces pt JOIN packs p ON p.id = pt.pack_id "
            "WHERE p.origin = 'created' AND pt.role IN ('work', 'overlap')"
        )
    }
    mine = {
        row[0]
        for row in conn.execute(
            "SELECT trace_id FROM pack_traces pt JOIN packs p ON p.id = pt.pack_id "
            "WHERE p.origin = 'created' AND p.annotator = ?",
            (annotator,),
        )
    }
    gold = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT trace_id FROM current_labels WHERE annotator = ?", (qc_from,)
        )
    }
    fresh = [t for t in candidates if t not in assigned and t not in gold and t not in mine]
    work = fresh[:traces] if traces is not None else fresh
    # Overlap: traces other annotators have as work, the least shared first.
    shared = dict(
        conn.execute(
            "SELECT pt.trace_id, COUNT(DISTINCT p.annotator) FROM pack_traces pt "
            "JOIN packs p ON p.id = pt.pack_id WHERE p.origin = 'created' "
            "AND pt.role IN ('work', 'overlap') GROUP BY pt.trace_id"
        ).fetchall()
    )
    wanted = set(candidates)
    others = sorted(
        (t for t in shared if t in wanted and t not in mine and t not in gold),
        key=lambda t: (shared[t], t),
    )[:overlap]
    if qc and not gold:
        raise InputError(
            f"no trace has labels by {qc_from!r} to check against; adjudicate some steps first "
            "or pass --qc-from NAME",
            field="--qc",
        )
    used_for_qc = dict(
        conn.execute(
            "SELECT trace_id, COUNT(*) FROM pack_traces WHERE role = 'qc' GROUP BY trace_id"
        ).fetchall()
    )
    checks = sorted(
        (t for t in gold if t in wanted and t not in mine), key=lambda t: (used_for_qc.get(t, 0), t)
    )[:qc]
    return (
        [(t, "work") for t in work] + [(t, "overlap") for t in others] + [(t, "qc") for t in checks]
    )


def _write_pack_file(
    store: Store,
    plugins: Plugins,
    path: Path,
    trace_ids: list[int],
    name: str,
    annotator: str,
    prelabels: str | None,
    params: dict,
    created_at: str,
    progress: Progress,
) -> int:
    """The pack file: the traces with their steps and the chosen model's suggestions only."""
    report = ImportReport()
    with Store(path) as pack, pack.transaction():
        run_id = pack.start_run("pack", params)
        writer = TraceWriter(pack, plugins, plugins.get("segmenter", "given"), run_id, report)
        for trace_id in trace_ids:
            check_cancelled(progress)
            writer.add(store.load_trace(trace_id, [prelabels] if prelabels else []), path)
            progress.advance(1)
        writer.flush()
        pack.conn.execute(
            "INSERT INTO packs (name, annotator, origin, prelabels, params, run_id, created_at)"
            " VALUES (?, ?, 'self', ?, '{}', ?, ?)",
            (name, annotator, prelabels, run_id, created_at),
        )
        pack.finish_run(run_id, "done", {"traces": report.traces, "steps": report.steps})
    return report.steps


# -- merge ---------------------------------------------------------------------------------------


def merge_packs(store: Store, paths: list[Path], progress: Progress | None = None) -> MergeReport:
    """Bring finished packs back; every pack is checked before anything is written."""
    progress = progress or NullProgress()
    if not paths:
        raise InputError("name at least one pack file")
    packs: list[tuple[Path, Store, tuple]] = []
    try:
        for path in paths:
            try:
                pack = Store(path, create=False)
            except StoreError as error:
                raise InputError(str(error).removeprefix(f"{path}: "), path) from None
            packs.append((path, pack, ()))
            described = pack_description(pack)
            if described is None:
                raise InputError("is not a Bondscope work pack (no pack description in it)", path)
            packs[-1] = (path, pack, described)
            _check_same_project(store, pack, path)
        packs.sort(key=lambda item: (item[2][3], item[2][0], str(item[0])))
        progress.start("merging packs", len(packs))
        merged: list[PackMerge] = []
        with store.transaction():
            run_id = store.start_run("pack-merge", {"packs": [str(p) for p, _, _ in packs]})
            for path, pack, (name, annotator, prelabels, _) in packs:
                check_cancelled(progress)
                merged.append(_merge_one(store, pack, path, name, annotator, prelabels, run_id))
                progress.advance(1)
            if not any(m.changes for m in merged):
                store.conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                run_id = None
            else:
                store.finish_run(run_id, "done", {m.pack: {"changes": m.changes} for m in merged})
    finally:
        for _, pack, _ in packs:
            pack.close()
    return MergeReport(merged, run_id)


def _check_same_project(store: Store, pack: Store, path: Path) -> None:
    hashes = [row[0] for row in pack.conn.execute("SELECT content_hash FROM traces")]
    known = {
        row[0]
        for row in store.conn.execute(
            "SELECT content_hash FROM traces WHERE content_hash IN "
            "(SELECT value FROM json_each(?))",
            (json.dumps(hashes),),
        )
    }
    missing = len(set(hashes) - known)
    if missing:
        raise InputError(
            f"is from another project: {missing} of its {len(hashes)} traces are not in "
            f"{store.path.name}; nothing was merged",
            path,
        )


def _merge_one(
    store: Store,
    pack: Store,
    path: Path,
    name: str,
    annotator: str,
    prelabels: str | None,
    run_id: int,
) -> PackMerge:
    known = bool(
        store.count("SELECT COUNT(*) FROM packs WHERE name = ? AND origin = 'created'", (name,))
    )
    report = PackMerge(name, str(path), annotator, known)
    report.traces = pack.count("SELECT COUNT(*) FROM traces")
    report.ignored = dict(
        pack.conn.execute(
            "SELECT annotator, COUNT(*) FROM current_labels WHERE annotator != ? "
            "AND annotator_kind = 'person' GROUP BY annotator ORDER BY annotator",
            (annotator,),
        ).fetchall()
    )
    step_of = _step_map(store, pack)
    conn = store.conn
    found = pack.conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
    if found is None:
        return report
    pack_annotator = found[0]
    existing = conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
    annotator_id = existing[0] if existing else -1  # created below only if something changes
    label_rows = []
    for step_id, behavior, created_at, seconds in pack.conn.execute(
        "SELECT e.step_id, e.behavior, e.created_at, latest.seconds FROM (SELECT step_id,"
        " MAX(id) AS id, SUM(seconds) AS seconds FROM label_events WHERE annotator_id = ?"
        " GROUP BY step_id) latest JOIN label_events e ON e.id = latest.id ORDER BY e.step_id",
        (pack_annotator,),
    ):
        target = step_of.get(step_id)
        if target is None:
            report.unmatched += behavior is not None
            continue
        before = conn.execute(
            "SELECT behavior FROM label_events WHERE step_id = ? AND annotator_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (target, annotator_id),
        ).fetchone()
        before = before[0] if before else None
        if before == behavior:
            report.labels_unchanged += behavior is not None
            continue
        if before is None:
            report.labels_added += 1
        elif behavior is None:
            report.labels_cleared += 1
        else:
            report.labels_changed += 1
        label_rows.append((target, behavior, seconds, run_id, created_at))
    bond_rows = []
    for source, target, type_, present, created_at in pack.conn.execute(
        "SELECT e.from_step_id, e.to_step_id, e.type, e.present, e.created_at FROM (SELECT"
        " MAX(id) AS id FROM bond_events WHERE annotator_id = ? GROUP BY from_step_id,"
        " to_step_id, type) latest JOIN bond_events e ON e.id = latest.id ORDER BY e.id",
        (pack_annotator,),
    ):
        ends = step_of.get(source), step_of.get(target)
        if None in ends:
            report.unmatched += present
            continue
        before = conn.execute(
            "SELECT present FROM bond_events WHERE from_step_id = ? AND to_step_id = ? AND"
            " type = ? AND annotator_id = ? ORDER BY id DESC LIMIT 1",
            (*ends, type_, annotator_id),
        ).fetchone()
        if (before[0] if before else 0) == present:
            continue
        if present:
            report.bonds_added += 1
        else:
            report.bonds_removed += 1
        bond_rows.append((*ends, type_, present, run_id, created_at))
    if label_rows or bond_rows:
        annotator_id = store.annotator_id(annotator, "person")
        conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, seconds, run_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(row[0], annotator_id, *row[1:]) for row in label_rows],
        )
        conn.executemany(
            "INSERT INTO bond_events (from_step_id, to_step_id, type, annotator_id, present,"
            " run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*row[:3], annotator_id, *row[3:]) for row in bond_rows],
        )
    return report


def _step_map(store: Store, pack: Store) -> dict[int, int]:
    """Pack step id -> project step id, matched by trace content hash and span."""
    project_steps = {
        (row[0], row[1], row[2]): row[3]
        for row in store.conn.execute(
            'SELECT t.content_hash, s.start, s."end", s.id FROM steps s JOIN traces t'
            " ON t.id = s.trace_id WHERE s.retired_run_id IS NULL AND t.content_hash IN"
            " (SELECT value FROM json_each(?))",
            (json.dumps([r[0] for r in pack.conn.execute("SELECT content_hash FROM traces")]),),
        )
    }
    mapping = {}
    for digest, start, end, step_id in pack.conn.execute(
        'SELECT t.content_hash, s.start, s."end", s.id FROM steps s JOIN traces t'
        " ON t.id = s.trace_id WHERE s.retired_run_id IS NULL"
    ):
        target = project_steps.get((digest, start, end))
        if target is not None:
            mapping[step_id] = target
    return mapping
