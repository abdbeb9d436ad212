"""Safety rules of the reliability issue that hold for the whole code base: no pickle (nor any
loader that unpickles), and names typed or imported by users never become SQL."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

from bondscope.cli import cli
from click.testing import CliRunner

from tests.helpers import dump, record, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for folder in ("desktop", "models", "plugins") for p in (ROOT / folder).rglob("*.py")]
UNPICKLING = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal"}


def test_no_module_unpickles():
    """pickle and its relatives run code from the file; np.load must never allow it."""
    problems = []
    for path in CODE:
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if UNPICKLING & {n.split(".")[0] for n in names}:
                    problems.append(f"{path}:{node.lineno}: imports {names}")
            allowed = isinstance(getattr(node, "value", None), ast.Constant) and (
                node.value.value is False
            )
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle" and not allowed:
                problems.append(f"{path}:{node.lineno}: allow_pickle")
            if isinstance(node, ast.Attribute) and node.attr == "load":
                base = node.value
                if isinstance(base, ast.Name) and base.id == "torch":
                    problems.append(f"{path}:{node.lineno}: torch.load unpickles")
    assert len(CODE) > 50 and problems == []


HOSTILE = "x'); DROP TABLE traces; --"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_names_that_look_like_sql_are_only_data(tmp_path):
    """Annotator, trace, model and source names with SQL in them are stored and matched as
    text (every statement binds them as parameters)."""
    hostile = record(
        id=HOSTILE,
        model=HOSTILE,
        source=HOSTILE,
        labels=[{"step": 0, "behavior": "N", "annotator": HOSTILE, "confidence": None}],
        bonds=[],
    )
    db = tmp_path / "p.db"
    assert run("import", write_jsonl(tmp_path / "t.jsonl", [hostile]), "--db", db).exit_code == 0
    stats = run("stats", "--db", db, "--json")
    assert stats.exit_code == 0 and json.loads(stats.output)["traces"] == 1
    assert HOSTILE in json.loads(stats.output)["annotators"]
    before = dump(db)
    for args in (
        ("metrics", "behavior-distribution", "--annotator", HOSTILE, "--source-model", HOSTILE),
        ("metrics", "behavior-distribution", "--annotator", HOSTILE, "--source", HOSTILE),
        ("prelabel", "--labeler", "keywords", "--traces", HOSTILE + "*"),
        ("export", "--format", "bondscope-jsonl", "--out", tmp_path / "out.jsonl",
         "--annotator", HOSTILE, "--source-model", HOSTILE),
    ):  # fmt: skip
        result = run(*args, "--db", db)
        assert result.exit_code == 0, (args, result.output)
    exported = json.loads((tmp_path / "out.jsonl").read_text("utf-8"))
    assert exported["id"] == HOSTILE and exported["labels"][0]["annotator"] == HOSTILE
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM traces")]
    conn.close()
    assert names == [HOSTILE]  # the table is still there, holding the name as text
    assert [line for line in dump(db) if 'INSERT INTO "traces"' in line] == [
        line for line in before if 'INSERT INTO "traces"' in line
    ]
