"""The trace files people have: chat records, list-valued and nested fields, Stratos tags, harmony,
Parquet files and shards, options in detection; on small real-shaped fixtures and the real
SkyThought evaluation files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bondscope.domain import InputError, Trace
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store

from tests.helpers import SHARED_DATA, THOUGHT_ANCHORS, needs_thought_anchors, write_jsonl

SKYTHOUGHT = SHARED_DATA / "skythought"
TAGS = ("<think>", "</think>", "<|", "|>")
THINKING = (
    "First I set up the sum of the two numbers here.\n\n"
    "Wait, let me check the sign of the second one again.\n\n"
    "So the total is four, and nothing else is left to do."
)


def imported(tmp_path: Path, paths: list[Path], **kwargs: Any) -> list[Trace]:
    """Import into a fresh project; the stored traces with their current steps."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with Store(tmp_path / "p.bondscope") as store:
        import_paths(store, Plugins(load_entry_points=False), paths, **kwargs)
        return [store.load_trace(i) for i in store.trace_ids()]


def step_texts(trace: Trace) -> list[str]:
    return [trace.text[s.start : s.end] for s in trace.steps or []]


def assert_clean_steps(trace: Trace, answer_text: str) -> None:
    """No tag and no part of the final answer inside any step."""
    texts = step_texts(trace)
    assert texts, trace.id
    for text in texts:
        assert not any(tag in text for tag in TAGS), text
        assert answer_text not in text, text


# -- chat records --------------------------------------------------------------------------------


def test_openthoughts_messages_with_think_block(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "openthoughts.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "You are a careful solver."},
                    {"role": "user", "content": "What is 2 + 2?"},
                    {
                        "role": "assistant",
                        "content": f"<think>\n{THINKING}\n</think>\n\nSo it is $\\boxed{{4}}$.",
                    },
                ],
                "source": "math",
            }
        ],
    )
    [trace] = imported(tmp_path, [path])
    assert trace.question == "What is 2 + 2?"
    assert trace.answer == "4"
    assert trace.meta == {"source": "math", "system": "You are a careful solver."}
    assert step_texts(trace) == THINKING.split("\n\n")
    assert_clean_steps(trace, "So it is")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_text", "thinking"])
def test_reasoning_field_of_the_assistant_message(tmp_path: Path, field: str) -> None:
    path = write_jsonl(
        tmp_path / "api.jsonl",
        [
            {
                "id": "call-1",
                "model": "deepseek-reasoner",
                "messages": [
                    {"role": "user", "content": "What is 2 + 2?"},
                    {"role": "assistant", "content": "It is 4.", field: THINKING},
                ],
            }
        ],
    )
    [trace] = imported(tmp_path, [path])
    assert (trace.id, trace.model, trace.answer) == ("call-1", "deepseek-reasoner", "It is 4.")
    assert step_texts(trace) == THINKING.split("\n\n")
    assert_clean_steps(trace, "It is 4.")


def test_sharegpt_conversations_with_stratos_tags_and_other_turns(tmp_path: Path) -> None:
    response = (
        f"<|begin_of_thought|>\n\n{THINKING}\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
        "Adding gives $\\boxed{4}$.\n\n<|end_of_solution|>"
    )
    path = write_jsonl(
        tmp_path / "stratos.jsonl",
        [
            {
                "system": "Your role as an assistant involves thoroughly exploring questions.",
                "conversations": [
                    {"from": "user", "value": "Hi"},
                    {"from": "assistant", "value": "Hello! Ask away."},
                    {"from": "user", "value": "What is 2 + 2?"},
                    {"from": "assistant", "value": response},
                ],
            }
        ],
    )
    [trace] = imported(tmp_path, [path])
    assert trace.question == "What is 2 + 2?"
    assert trace.answer == "4"
    assert trace.meta["system"].startswith("Your role")
    assert trace.meta["turns"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! Ask away."},
    ]
    assert step_texts(trace) == THINKING.split("\n\n")
    assert_clean_steps(trace, "Adding gives")


def test_content_as_a_list_of_parts_and_a_reasoning_only_reply(tmp_path: Path) -> None:
    """OpenAI-style content parts are joined; a reply cut off while reasoning has no answer."""
    path = write_jsonl(
        tmp_path / "parts.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "What is "},
                                                 {"type": "text", "text": "2 + 2?"}]},
                    {"role": "assistant", "content": None, "reasoning": THINKING},
                ]
            }
        ],
    )  # fmt: skip
    [trace] = imported(tmp_path, [path])
    assert (trace.question, trace.answer) == ("What is 2 + 2?", "")
    assert step_texts(trace) == THINKING.split("\n\n")


def test_our_sft_chat_export_imports_back_as_chat(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "r1.jsonl",
        [{"id": "q1", "question": "2+2?", "response": f"<think>\n{THINKING}\n</think>\n\n4"}],
    )
    first = tmp_path / "first"
    first.mkdir()
    [original] = imported(first, [source])
    plugins = Plugins(load_entry_points=False)
    out = tmp_path / "sft.jsonl"
    plugins.get("exporter", "sft-chat").export([original], out)
    [again] = imported(tmp_path, [out])
    assert (again.id, again.text, again.question, again.answer) == (
        original.id,
        original.text,
        original.question,
        original.answer,
    )


# -- r1-json: lists, paths, tags, correctness ----------------------------------------------------


@pytest.mark.skipif(not SKYTHOUGHT.exists(), reason="shared data not present")
def test_skythought_evaluation_files(tmp_path: Path) -> None:
    traces = imported(tmp_path, [SKYTHOUGHT])
    assert len(traces) == 80
    records = [
        json.loads(line)
        for path in sorted(SKYTHOUGHT.glob("*.jsonl"))
        for line in path.read_text("utf-8").splitlines()
    ]
    by_id = {t.id: t for t in traces}
    for path in sorted(SKYTHOUGHT.glob("*.jsonl")):
        for n, line in enumerate(path.read_text("utf-8").splitlines()):
            record = json.loads(line)
            trace = by_id[f"{path.stem}:{n}#0"]
            assert trace.meta["correct"] is record["score"][0]
            assert trace.question == record["question"]
            response = record["code"][0]
            solution = response.partition("<|begin_of_solution|>")[2]
            solution = solution.replace("<|end_of_solution|>", "")
            for text in step_texts(trace):
                assert not any(tag in text for tag in TAGS), text
            thinking_end = trace.text.find("</think>")
            if "<|end_of_thought|>" in response:  # the solution follows, outside every step
                assert trace.text[thinking_end:].endswith(solution)
                assert all(s.end <= thinking_end for s in trace.steps or [])
            else:  # cut off while thinking: no solution
                assert thinking_end == -1 and not solution
    assert sum(t.meta["correct"] for t in traces) == sum(r["score"][0] for r in records)


def test_list_valued_responses_give_one_trace_per_sample(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "qwq-eval.jsonl",
        [
            {
                "id": "p1",
                "prompt": "What is 2 + 2?",
                "gen": [f"<think>{THINKING}</think>4", "<think>Guess.\n\nMaybe 5.</think>5"],
                "is_correct": [True, False],
            }
        ],
    )
    traces = imported(tmp_path, [path])
    assert [(t.id, t.answer, t.meta["correct"], t.meta["sample"]) for t in traces] == [
        ("p1#0", "4", True, 0),
        ("p1#1", "5", False, 1),
    ]
    first = imported(tmp_path / "first", [path], options={"samples": "first"})
    assert [t.id for t in first] == ["p1"]


def test_openr1_generations_with_a_named_correctness_field(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "openr1.jsonl",
        [
            {
                "problem": "What is 2 + 2?",
                "solution": "2 + 2 = 4",  # the reference solution, no thinking: not a response
                "answer": "4",
                "generations": [f"<think>{THINKING}</think>\\boxed{{4}}"],
                "correctness_math_verify": [True],
            }
        ],
    )
    [trace] = imported(
        tmp_path,
        [path],
        format="r1-json",
        options={"correct_field": "correctness_math_verify"},
    )
    assert trace.meta["correct"] is True
    assert trace.meta["solution"] == "2 + 2 = 4"
    assert step_texts(trace) == THINKING.split("\n\n")


def test_field_paths_into_an_api_response(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "vllm.jsonl",
        [
            {
                "id": "cmpl-7",
                "question": "What is 2 + 2?",
                "choices": [{"message": {"content": "4", "reasoning_content": THINKING}}],
            }
        ],
    )
    options = {
        "response_field": "choices.0.message.reasoning_content",
        "answer_field": "choices.0.message.content",
    }
    [trace] = imported(tmp_path, [path], options=options)  # auto-detection sees the options
    assert (trace.id, trace.text, trace.answer) == ("cmpl-7", THINKING, "4")
    assert "choices" not in trace.meta and len(trace.steps or []) == 3


def test_custom_think_tags(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "magistral.jsonl",
        [{"question": "2+2?", "response": f"[THINK]{THINKING}[/THINK]The answer is 4."}],
    )
    [trace] = imported(tmp_path, [path], format="r1-json", options={"think": "[THINK] [/THINK]"})
    assert trace.answer == "The answer is 4."
    assert step_texts(trace) == THINKING.split("\n\n")


TOOL_CALL = '{"expression": "2 + 2", "precision": "exact integer"}'
HARMONY = (
    f"<|channel|>analysis<|message|>{THINKING}<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.calc <|constrain|>json<|message|>"
    f"{TOOL_CALL}<|call|>"
    "<|start|>assistant<|channel|>final<|message|>The answer is 4.<|return|>"
)


def test_harmony_channels_in_a_record_and_in_a_text_file(tmp_path: Path) -> None:
    record = write_jsonl(tmp_path / "gpt-oss.jsonl", [{"prompt": "2+2?", "output": HARMONY}])
    text_file = tmp_path / "gpt-oss.txt"
    text_file.write_text(HARMONY, encoding="utf-8")
    traces = imported(tmp_path, [record, text_file])
    assert len(traces) == 2
    for trace in traces:
        assert trace.text.endswith("The answer is 4.")
        assert step_texts(trace) == [*THINKING.split("\n\n"), TOOL_CALL]
        assert_clean_steps(trace, "The answer is 4.")
    assert traces[0].answer == "The answer is 4."


# -- Parquet -------------------------------------------------------------------------------------


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 2) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def chat_row(i: int) -> dict[str, Any]:
    return {
        "id": f"row-{i}",
        "messages": [
            {"role": "user", "content": f"Question {i}?", "reasoning_content": None},
            {"role": "assistant", "content": f"{i}", "reasoning_content": THINKING},
        ],
        "score": 0.5 if i else float("nan"),  # NaN becomes null: JSON has no NaN
    }


def test_parquet_chat_rows_and_a_folder_of_shards(tmp_path: Path) -> None:
    shards = tmp_path / "data"
    shards.mkdir()
    write_parquet(shards / "train-00000-of-00002.parquet", [chat_row(i) for i in range(3)])
    write_parquet(shards / "train-00001-of-00002.parquet", [chat_row(i) for i in range(3, 5)])
    traces = imported(tmp_path, [shards])
    assert [t.id for t in traces] == [f"row-{i}" for i in range(5)]
    assert [t.answer for t in traces] == [str(i) for i in range(5)]
    assert traces[0].meta["score"] is None and traces[1].meta["score"] == 0.5
    assert all(step_texts(t) == THINKING.split("\n\n") for t in traces)


def test_parquet_r1_rows_with_non_json_types(tmp_path: Path) -> None:
    import datetime

    rows = [
        {
            "problem": "2+2?",
            "generation": f"<think>{THINKING}</think>4",
            "created": datetime.datetime(2025, 1, 2, 3, 4, 5),
            "blob": b"\xff\x00",
        }
    ]
    [trace] = imported(tmp_path, [write_parquet(tmp_path / "r1.parquet", rows)])
    assert trace.meta == {"created": "2025-01-02T03:04:05", "blob": "/wA="}
    assert trace.answer == "4"


def test_parquet_errors_name_the_row_and_field(tmp_path: Path) -> None:
    rows = [
        {"problem": "q", "generation": f"<think>{THINKING}</think>4"},
        {"problem": "q", "generation": f"<think>{THINKING}</think>4"},
        {"problem": None, "generation": None},
    ]
    path = write_parquet(tmp_path / "bad.parquet", rows)
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError) as raised:
        import_paths(store, Plugins(load_entry_points=False), [path])
    assert str(raised.value) == f"{path}: row 3: field 'generation': must be a string or a list" + (
        " of strings, got NoneType"
    )
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(path.read_bytes()[:-20])
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError, match="Parquet"):
        import_paths(store, Plugins(load_entry_points=False), [broken], format="r1-json")


def test_parquet_is_read_by_row_group_not_whole(tmp_path: Path) -> None:
    """40 MB of text in 64 row groups: pyarrow's peak allocation stays near one row group."""
    path = tmp_path / "big.parquet"
    text = "<think>" + ("All work and no play. " * 300 + "\n\n") * 10 + "</think>4"
    table = pa.Table.from_pylist([{"problem": f"q{i}", "generation": text} for i in range(600)])
    pq.write_table(table, path, row_group_size=10, compression="zstd")
    script = (
        "import sys, pyarrow as pa\n"
        "from pathlib import Path\n"
        "from bondscope.jsonio import iter_json_records\n"
        "n = sum(1 for _ in iter_json_records(Path(sys.argv[1])))\n"
        "print(n, pa.default_memory_pool().max_memory())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    rows, peak = map(int, done.stdout.split())
    assert rows == 600
    assert peak < len(text) * 600 / 4, peak  # far less than the 40 MB of text


@needs_thought_anchors
def test_our_parquet_export_imports_back_losslessly(tmp_path: Path) -> None:
    plugins = Plugins(load_entry_points=False)
    with Store(tmp_path / "a.bondscope") as store:
        import_paths(store, plugins, [THOUGHT_ANCHORS / "deepseek-r1-distill-qwen-14b"])
        originals = [store.load_trace(i) for i in store.trace_ids()]
    from bondscope.services.exporting import export_traces

    with Store(tmp_path / "a.bondscope") as store:
        export_traces(store, plugins, "parquet", tmp_path / "tables")
    assert (tmp_path / "tables" / ".bondscope-export.json").is_file()
    again = imported(tmp_path, [tmp_path / "tables"])
    assert len(again) == len(originals) == 20
    key = lambda t: t.id  # noqa: E731
    for a, b in zip(sorted(originals, key=key), sorted(again, key=key), strict=True):
        assert (a.id, a.text, a.question, a.model, a.source, a.answer, a.meta) == (
            b.id,
            b.text,
            b.question,
            b.model,
            b.source,
            b.answer,
            b.meta,
        )
        assert a.steps == b.steps
        assert sorted(a.labels, key=repr) == sorted(b.labels, key=repr)
        assert sorted(a.bonds, key=repr) == sorted(b.bonds, key=repr)
        assert a.annotator_kinds == b.annotator_kinds


# -- detection -----------------------------------------------------------------------------------


def test_detection_takes_options_into_account(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "plain.jsonl", [{"question": "2+2?", "generation": "Two and two is four."}]
    )
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError, match="no importer"):
        import_paths(store, Plugins(load_entry_points=False), [path])
    [trace] = imported(tmp_path, [path], options={"response_field": "generation"})
    assert trace.text == "Two and two is four."


def test_a_file_two_importers_could_read_names_both(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "both.jsonl",
        [
            {
                "problem": "2+2?",
                "generations": [f"<think>{THINKING}</think>4"],
                "messages": [
                    {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": f"<think>{THINKING}</think>4"},
                ],
            }
        ],
    )
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError) as raised:
        import_paths(store, Plugins(load_entry_points=False), [path])
    assert "several importers could read this file (r1-json, chat)" in str(raised.value)
    assert len(imported(tmp_path, [path], format="chat")) == 1


def test_format_text_refuses_json_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r1.jsonl", [{"question": "q", "response": "<think>a</think>"}])
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError) as raised:
        import_paths(store, Plugins(load_entry_points=False), [path], format="text")
    assert "parses as JSON / JSON Lines" in str(raised.value)


# -- the older Thought Anchors layout ------------------------------------------------------------


def test_older_thought_anchors_layout_reads_chunks_json(tmp_path: Path) -> None:
    folder = tmp_path / "problem_3"
    folder.mkdir()
    solution = "Let me set up the problem first.\n\nWait, check: 2 + 2 = 4.\n</think>\n\n4"
    (folder / "chunks.json").write_text(
        json.dumps({"source_text": "Q <think>\n" + solution, "solution_text": solution}), "utf-8"
    )
    chunks = [
        {"chunk": "Let me set up the problem first.", "chunk_idx": 0,
         "function_tags": ["problem_setup"], "depends_on": []},
        {"chunk": "Wait, check: 2 + 2 = 4.", "chunk_idx": 1,
         "function_tags": ["self_checking"], "depends_on": ["0"]},
    ]  # fmt: skip
    (folder / "chunks_labeled.json").write_text(json.dumps(chunks), "utf-8")
    [trace] = imported(tmp_path, [folder])
    assert trace.text == solution
    assert [lb.behavior for lb in trace.labels] == ["N", "R"]
    assert [(b.source, b.target, b.type) for b in trace.bonds] == [(1, 0, "hydrogen")]


def test_a_folder_with_only_labeled_chunks_says_what_it_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "problem_4"
    folder.mkdir()
    (folder / "chunks_labeled.json").write_text("[]", "utf-8")
    with Store(tmp_path / "p.bondscope") as store, pytest.raises(InputError) as raised:
        import_paths(store, Plugins(load_entry_points=False), [folder])
    assert str(raised.value) == (
        f"{folder}: found nothing to import; no importer recognizes the 1 files in it "
        "(chunks_labeled.json)"
    )
