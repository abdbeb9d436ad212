"""Chat records: a `messages` (role/content) or `conversations` (ShareGPT from/value) list.

The trace is the last assistant turn; its question is the last user turn before it. The thinking
comes from, in order: a reasoning field of the assistant message (`reasoning_content`, DeepSeek;
`reasoning` or `reasoning_text`, vLLM and gpt-oss; `thinking`), a `<think>` block, Stratos tags or
harmony channels in its content (bondscope.thinking). The answer is the last `\\boxed{}` after the
thinking, or that text. The system prompt goes to `meta.system`, the other turns to `meta.turns`,
the record's other fields to `meta` as they are. JSON, JSON Lines and Parquet, streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import InputError, Trace
from bondscope.jsonio import first_record, iter_json_records
from bondscope.plugins.r1_json import SUFFIXES, as_bool, pick
from bondscope.thinking import ThinkStyle, final_answer, normalized, parse_style, with_reasoning

MESSAGE_FIELDS = "messages,conversations,conversation"
REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_text", "thinking")
ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
DEFAULTS = {
    "messages_field": MESSAGE_FIELDS,
    "id_field": "id",
    "model_field": "model,generator",
    "correct_field": "correct,is_correct,score",
}


def _options(options: dict[str, str], key: str) -> list[str]:
    return [name.strip() for name in options.get(key, DEFAULTS[key]).split(",") if name.strip()]


def role_of(message: dict[str, Any]) -> str | None:
    role = message.get("role", message.get("from"))
    return ROLES.get(role.strip().lower(), role) if isinstance(role, str) else None


def content_of(message: dict[str, Any], where: str) -> str:
    """`content` / `value` as text; OpenAI-style lists of parts are joined."""
    value = message.get("content", message.get("value"))
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif not (isinstance(part, dict) and part.get("text") is None):
                raise InputError("must be text or a {type, text} part", field=f"{where}[{i}]")
        return "".join(parts)
    raise InputError(f"must be a string, got {type(value).__name__}", field=where)


def is_chat(value: Any) -> bool:
    """A list of role/content (or from/value) messages with an assistant turn."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) for m in value)
        and any(role_of(m) == "assistant" for m in value)
    )


class ChatImporter:
    name = "chat"
    description = "chat records: messages / conversations lists (OpenThoughts, ShareGPT, APIs)"

    def detect(self, path: Path, options: dict[str, str] | None = None) -> bool:
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            return False
        record = first_record(path)
        if not isinstance(record, dict):
            return False
        _, messages = pick(record, _options(options or {}, "messages_field"))
        return is_chat(messages)

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        try:
            style = parse_style(options.get("think"))
        except ValueError as error:
            raise InputError(str(error), path, field="think") from None
        message_fields = _options(options, "messages_field")
        empty = True
        for n, (line, record) in enumerate(iter_json_records(path)):
            empty = False
            if not isinstance(record, dict):
                raise InputError(f"expected a JSON object, got {type(record).__name__}", path, line)
            try:
                trace = self._trace(path, n, record, message_fields, options, style)
            except InputError as error:
                raise error.located(path, line) from None
            trace.line = line
            yield trace
        if empty:
            raise InputError("file is empty", path)

    def _trace(
        self,
        path: Path,
        n: int,
        record: dict[str, Any],
        message_fields: list[str],
        options: dict[str, str],
        style: ThinkStyle,
    ) -> Trace:
        name, messages = pick(record, message_fields)
        if name is None:
            raise InputError(
                "missing (set --option messages_field=NAME)", field="/".join(message_fields)
            )
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise InputError("must be a list of message objects", field=name)
        roles = [role_of(m) for m in messages]
        for i, role in enumerate(roles):
            if role is None:
                raise InputError("missing role (role or from)", field=f"{name}[{i}]")
        answer_at = max((i for i, r in enumerate(roles) if r == "assistant"), default=None)
        if answer_at is None:
            raise InputError("has no assistant turn", field=name)
        question_at = max((i for i in range(answer_at) if roles[i] == "user"), default=None)
        assistant = messages[answer_at]
        where = f"{name}[{answer_at}]"
        content = content_of(assistant, f"{where}.content")
        reasoning_name, reasoning = next(
            ((k, assistant[k]) for k in REASONING_FIELDS if assistant.get(k)), (None, None)
        )
        if reasoning is not None and not isinstance(reasoning, str):
            raise InputError(
                f"must be a string, got {type(reasoning).__name__}",
                field=f"{where}.{reasoning_name}",
            )
        text = with_reasoning(reasoning, content) if reasoning else normalized(content, style)
        question = (
            content_of(messages[question_at], f"{name}[{question_at}].content")
            if question_at is not None
            else ""
        )
        meta: dict[str, Any] = {k: v for k, v in record.items() if k != name.split(".")[0]}
        system = [
            content_of(m, f"{name}[{i}].content")
            for i, m in enumerate(messages)
            if roles[i] == "system"
        ]
        if system:
            meta["system"] = "\n\n".join(system)
        turns = [
            {"role": roles[i], "content": content_of(m, f"{name}[{i}].content")}
            for i, m in enumerate(messages)
            if i not in (answer_at, question_at) and roles[i] != "system"
        ]
        if turns:
            meta["turns"] = turns
        correct_name, correct = pick(record, _options(options, "correct_field"))
        flag = as_bool(correct)
        if correct_name is not None and flag is not None:
            meta["correct"] = flag
        _, identifier = pick(record, _options(options, "id_field"))
        model_name, model = pick(record, _options(options, "model_field"))
        if model is not None and not isinstance(model, str):
            raise InputError("must be a string", field=model_name)
        return Trace(
            id=str(identifier) if identifier is not None else f"{path.stem}:{n}",
            text=text,
            question=question,
            model=model or options.get("model", ""),
            source=options.get("source", "") or path.stem,
            answer=final_answer(text),
            meta=meta,
        )


@hookimpl
def register_importers(register):
    register(ChatImporter())
