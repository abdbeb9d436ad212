"""Exporter "sft-chat": one chat conversation per trace, the format SFT trainers read.

Each line is `{"id", "messages": [user: question, assistant: "<think>\\n...\\n</think>\\n\\n
answer"]}`: the thinking part (the steps' region) inside think tags, then the final answer, as
MOLE-SYN trains on it (paper.md §4 step 7, §8 D4).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from bondscope import Trace, hookimpl
from bondscope.domain import thinking_span
from bondscope.jsonio import first_record


def assistant_text(trace: Trace) -> str:
    """`<think>` thinking `</think>` answer; the answer is the text after `</think>`, or
    `trace.answer` when the trace has nothing there."""
    start, end = thinking_span(trace.text)
    thinking = trace.text[start:end].strip()
    after = trace.text[end + len("</think>") :].strip() if "</think>" in trace.text else ""
    answer = after or trace.answer.strip()
    return f"<think>\n{thinking}\n</think>\n\n{answer}"


class SftChatExporter:
    name = "sft-chat"
    description = "chat JSONL for SFT: user question, assistant <think>steps</think> answer"
    default_suffix = ".jsonl"

    def recognizes(self, path: Path) -> bool:
        record = first_record(path)
        return isinstance(record, dict) and isinstance(record.get("messages"), list)

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        with open(out, "w", encoding="utf-8") as handle:
            for trace in traces:
                record = {
                    "id": trace.id,
                    "messages": [
                        {"role": "user", "content": trace.question},
                        {"role": "assistant", "content": assistant_text(trace)},
                    ],
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


@hookimpl
def register_exporters(register) -> None:  # noqa: ANN001 - the host's register callback
    register(SftChatExporter())
