"""Where the thinking is in a model response, whatever convention the model wrote it in.

Bondscope keeps every trace in one shape: the thinking between `<think>` and `</think>`, then the
final answer (`domain.thinking_span` finds it, so segmenters, re-segmenting and the exporters need
no other convention). Responses in another convention are rewritten into that shape on import:

- `think`: `<think>...</think>answer` (DeepSeek-R1, QwQ, OpenThoughts): kept exactly as written;
- `stratos`: `<|begin_of_thought|>...<|end_of_thought|><|begin_of_solution|>...<|end_of_solution|>`
  (Sky-T1, Bespoke-Stratos): the tags are replaced, the solution becomes the text after `</think>`;
- `harmony` (gpt-oss): the `analysis` and `commentary` channels are the thinking, the `final`
  channel the answer; no special token is kept;
- custom tags (`-o think="[THINK] [/THINK]"`: the opening and closing tag, space-separated).

A reasoning field beside the answer (DeepSeek's `reasoning_content`, vLLM's `reasoning`) is joined
the same way by `with_reasoning`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK = ("<think>", "</think>")
STRATOS = ("<|begin_of_thought|>", "<|end_of_thought|>")
STRATOS_SOLUTION = ("<|begin_of_solution|>", "<|end_of_solution|>")
STYLES = ("auto", "think", "stratos", "harmony")
HARMONY_MESSAGE = re.compile(
    r"(?:<\|start\|>[^<]*)?<\|channel\|>(?P<channel>[^<]*?)(?:<\|constrain\|>[^<]*)?<\|message\|>"
    r"(?P<content>.*?)(?=<\|end\|>|<\|return\|>|<\|call\|>|<\|start\|>|<\|channel\|>|\Z)",
    re.DOTALL,
)
SPECIAL_TOKEN = re.compile(r"<\|[a-z_]+\|>")
THINKING_CHANNELS = {"analysis", "commentary"}


@dataclass(frozen=True)
class ThinkStyle:
    """How a response marks its thinking: a named style, or custom opening and closing tags."""

    name: str
    tags: tuple[str, str] | None = None


def parse_style(value: str | None) -> ThinkStyle:
    """`-o think=VALUE`: auto (default), think, stratos, harmony, or "OPEN CLOSE"."""
    value = (value or "auto").strip()
    if value in STYLES:
        return ThinkStyle(value)
    parts = value.split()
    if len(parts) != 2:
        raise ValueError(
            f"think={value!r}: expected one of {', '.join(STYLES)} or two tags, "
            "e.g. think='[THINK] [/THINK]'"
        )
    return ThinkStyle("custom", (parts[0], parts[1]))


def detected(text: str, style: ThinkStyle) -> str:
    """The style that applies to `text`: auto looks for harmony, then Stratos, then `<think>`."""
    if style.name != "auto":
        return style.name
    if "<|channel|>" in text and "<|message|>" in text:
        return "harmony"
    if STRATOS[0] in text:
        return "stratos"
    return "think"


def has_thinking(text: str, style: ThinkStyle | None = None) -> bool:
    """Whether the response marks a thinking part (what detection looks for)."""
    style = style or ThinkStyle("auto")
    name = detected(text, style)
    if name == "custom":
        return style.tags is not None and style.tags[0] in text
    if name == "think":
        return THINK[1] in text or THINK[0] in text
    return True


def normalized(text: str, style: ThinkStyle | None = None) -> str:
    """The response in Bondscope's shape: `<think>thinking</think>answer` (see the module doc)."""
    style = style or ThinkStyle("auto")
    name = detected(text, style)
    if name == "harmony":
        return _harmony(text)
    if name == "stratos":
        return _retagged(text, STRATOS, STRATOS_SOLUTION)
    if name == "custom" and style.tags is not None:
        return _retagged(text, style.tags, None)
    return text


def with_reasoning(reasoning: str, content: str) -> str:
    """A separate reasoning field and the answer, as one response (the sft-chat layout)."""
    return f"{THINK[0]}\n{reasoning.strip()}\n{THINK[1]}\n\n{normalized(content).strip()}"


def after_thinking(text: str) -> str:
    """The text after `</think>` (the final answer part); '' when the thinking never closed."""
    _, close, after = text.partition(THINK[1])
    return after if close else ""


def final_answer(text: str) -> str:
    """The answer of a normalized response: the last `\\boxed{}` after the thinking, or that
    text itself."""
    after = after_thinking(text)
    return last_boxed(after) or after.strip()


def last_boxed(text: str) -> str:
    """The content of the last \\boxed{...}, braces balanced, or ''."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return ""
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return ""


def _retagged(text: str, tags: tuple[str, str], solution: tuple[str, str] | None) -> str:
    opening, closing = tags
    start = text.find(opening)
    if start == -1:
        return text
    before, rest = text[:start], text[start + len(opening) :]
    thinking, close, after = rest.partition(closing)
    if solution is not None:
        after = after.replace(solution[0], "").replace(solution[1], "")
    if not close:
        return f"{before}{THINK[0]}{thinking}"
    return f"{before}{THINK[0]}{thinking}{THINK[1]}{after}"


def _harmony(text: str) -> str:
    thinking, final = [], []
    for match in HARMONY_MESSAGE.finditer(text):
        channel = match["channel"].split()[0] if match["channel"].split() else ""
        content = SPECIAL_TOKEN.sub("", match["content"]).strip()
        if not content:
            continue
        (thinking if channel in THINKING_CHANNELS else final).append(content)
    if not thinking and not final:
        return SPECIAL_TOKEN.sub("", text)
    body = "\n\n".join(thinking)
    return f"{THINK[0]}\n{body}\n{THINK[1]}\n\n" + "\n\n".join(final)
