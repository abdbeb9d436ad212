"""Small builders shared by the tests (real files, real stores)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
THOUGHT_ANCHORS = SHARED_DATA / "thought-anchors"
PROCESSBENCH = SHARED_DATA / "processbench"
# Tests that read the real traces in ../shared/data are skipped where it is absent (README).
needs_thought_anchors = pytest.mark.skipif(
    not THOUGHT_ANCHORS.is_dir(), reason="shared data not present"
)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def dump(db_path: Path) -> list[str]:
    """Every row of every table, to compare a project before and after a failed command."""
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def record(**overrides: Any) -> dict[str, Any]:
    text = "First we set up the problem.\n\nWait, let me check that again.\n\nSo x = 4."
    base = {
        "format": "bondscope-jsonl/1",
        "id": "t1",
        "source": "unit",
        "model": "m",
        "question": "What is x?",
        "text": text,
        "answer": "4",
        "steps": [{"start": 0, "end": 28}, {"start": 30, "end": 60}, {"start": 62, "end": 71}],
        "labels": [
            {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None},
            {"step": 1, "behavior": "R", "annotator": "alice", "confidence": None},
            {"step": 1, "behavior": "R", "annotator": "model:kw@1", "confidence": 0.75},
        ],
        "bonds": [{"from": 1, "to": 0, "type": "hydrogen", "annotator": "alice"}],
        "meta": {"k": [1, 2]},
    }
    base.update(overrides)
    return base


def bare_record(**overrides: Any) -> dict[str, Any]:
    """A record without steps, labels or bonds: it is segmented on import."""
    data = record(**overrides)
    for key in ("steps", "labels", "bonds"):
        data.pop(key)
    return data
