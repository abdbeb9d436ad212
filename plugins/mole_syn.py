"""Synthesizer "mole-syn": the paper's per-behavior step prompts (paper.md §4.1, paraphrased).

The templates are plain text files (`resources/synthesis/prompts/`: `definitions.txt` plus one
file per behavior) so they can be edited, or replaced with `--prompts DIR`, without touching
code. Placeholders: `{definitions}`, `{question}`, `{rationale}`; every other brace (`\\boxed{}`)
is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from bondscope import BEHAVIORS, InputError, hookimpl

TEMPLATE_NAMES = ("definitions", *BEHAVIORS)
EMPTY_RATIONALE = "(nothing yet: write the first step)"
BOXED = "\\boxed{"


def boxed_answer(text: str) -> str | None:
    """The content of the last complete \\boxed{...} (braces balanced), or None."""
    start = text.rfind(BOXED)
    while start != -1:
        depth, i = 1, start + len(BOXED)
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len(BOXED) : i - 1].strip()
        start = text.rfind(BOXED, 0, start)
    return None


class MoleSynSynthesizer:
    name = "mole-syn"
    description = "one step per sampled behavior with the paper's Appendix-E style prompts"

    def templates(self, folder: Path | None) -> dict[str, str]:
        """Every template by name; a missing file is named in the error."""
        prompts = folder or files("bondscope.resources") / "synthesis" / "prompts"
        found = {}
        for name in TEMPLATE_NAMES:
            entry = prompts / f"{name}.txt"
            if not entry.is_file():
                raise InputError("prompt template is missing", str(entry))
            found[name] = entry.read_text("utf-8")
        return found

    def messages(
        self, templates: dict[str, str], question: str, steps: Sequence[str], behavior: str
    ) -> list[dict[str, str]]:
        # Definitions first: the question or rationale may contain "{question}" literally.
        text = templates[behavior].replace("{definitions}", templates["definitions"].strip())
        rationale = "\n\n".join(steps) if steps else EMPTY_RATIONALE
        before, found, after = text.partition("{rationale}")
        parts = [before.replace("{question}", question), rationale if found else ""]
        parts.append(after.replace("{question}", question))
        return [{"role": "user", "content": "".join(parts).strip()}]

    def final_answer(self, text: str) -> str | None:
        return boxed_answer(text)


@hookimpl
def register_synthesizers(register) -> None:  # noqa: ANN001 - the host's register callback
    register(MoleSynSynthesizer())
