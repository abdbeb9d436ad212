"""The importer fuzz at a higher budget, for every importer that is installed (new ones too) and
through auto-detection: any input imports or gives a located InputError with the project
unchanged. Marked `slow`: left out of the default run (`pytest -m slow` runs it; about two
minutes on 2 cores). The strategies are those of test_fuzz_importers.py."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from bondscope.plugin_manager import Plugins
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_fuzz_importers import (  # noqa: F401 - fixtures
    ANY_JSON,
    ANY_TEXT,
    BASE_RECORDS,
    FUZZ,
    chunk_lists,
    encode,
    files,
    import_or_input_error,
    project,
    workdir,
)

pytestmark = pytest.mark.slow
SLOW = settings(FUZZ, max_examples=1500)
IMPORTERS = sorted(Plugins(load_entry_points=False).importers())


@st.composite
def any_files(draw: st.DrawFn, importer: str) -> tuple[str, bytes]:
    """Near-valid records where the importer has a known good one; otherwise any JSON or bytes."""
    if importer in BASE_RECORDS:
        return draw(files(importer))
    suffix = draw(st.sampled_from([".jsonl", ".json", ".txt", ".parquet", ".csv", ""]))
    value = draw(st.binary(max_size=300) | ANY_JSON.map(lambda v: encode(v, False)))
    return suffix, value


@SLOW
@given(case=st.sampled_from(IMPORTERS + ["auto"]).flatmap(
    lambda name: st.tuples(st.just(name), any_files("bondscope-jsonl" if name == "auto" else name))
))  # fmt: skip
def test_every_importer_at_a_high_budget(workdir, project, case):  # noqa: F811 - fixtures
    importer, (suffix, content) = case
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        target = Path(folder) / f"input{suffix}"
        target.write_bytes(content)
        import_or_input_error(project, target, importer)


@settings(FUZZ, max_examples=500)
@given(
    base=st.fixed_dictionaries({"solution": st.just("Hm.\n\nSo 4.\n</think>4") | ANY_TEXT})
    | ANY_JSON,
    chunks=chunk_lists(),
)
def test_thought_anchors_folders_at_a_high_budget(workdir, project, base, chunks):  # noqa: F811
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        target = Path(folder) / "problem_1"
        target.mkdir()
        (target / "base_solution.json").write_bytes(encode(base, False))
        (target / "chunks_labeled.json").write_bytes(encode(chunks, False))
        import_or_input_error(project, target, "auto")
