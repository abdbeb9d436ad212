"""Pre-labeler "llm": asks a chat model (any OpenAI-compatible server) for each step's behavior.

The paper labels steps with an LLM-based classifier (paper.md §2); this is that labeler, with the
four definitions of §1.1 and the labeling guide's rules of thumb. Its labels are ordinary label
events of annotator `model:llm@<model>`, so `bondscope train --gold model:llm@...` can distill
them into the ONNX classifier. It is built in but does nothing until configured: through the
environment (BONDSCOPE_LLM_BASE_URL, BONDSCOPE_LLM_MODEL, ...) or `configure(...)`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from bondscope import BEHAVIORS, Trace, hookimpl, llm_defaults
from bondscope.hookspecs import LLMError, StepPrediction
from bondscope.plugins.openai_compatible import OpenAIChatClient

ENV = {
    "base_url": "BONDSCOPE_LLM_BASE_URL",
    "model": "BONDSCOPE_LLM_MODEL",
    "api_key_env": "BONDSCOPE_LLM_API_KEY_ENV",
    "context": "BONDSCOPE_LLM_CONTEXT",
    "concurrency": "BONDSCOPE_LLM_CONCURRENCY",
    "timeout": "BONDSCOPE_LLM_TIMEOUT",
    "max_retries": "BONDSCOPE_LLM_MAX_RETRIES",
    "backoff": "BONDSCOPE_LLM_BACKOFF",
}

SYSTEM_PROMPT = """You classify one step of a model's step-by-step reasoning.
Each step gets exactly one behavior: the behavior of the move into that step.
- N, normal operation: a plain, direct move (arithmetic, substitution, recalling a fact,
  restating the problem or a result, simple logic). It adds no new logical node.
- D, deep reasoning: causal, deductive or analogical inference over several steps that extends the
  argument with a new logical node (a derived relation, a key insight, a new intermediate result
  reached by real inference, a hidden assumption made explicit).
- R, self-reflection: the model looks at its own thinking: checks, verifies, doubts, finds or fixes
  a mistake, re-reads the problem, reconsiders an earlier step. It goes back to earlier nodes.
- E, exploration: the model proposes a new possibility, hypothesis, alternative approach or open
  question, branching to another path instead of following one conclusion.
Judge what the step does, not its first word: a "But" that continues a derivation is D or N, and
a "Wait" followed by plain continuation is not a reflection. A step mixing functions gets its
dominant one; on an even split prefer the rarer behavior (R or E).
Answer with JSON only: {"behavior": "N" | "D" | "R" | "E", "confidence": <number from 0 to 1>}"""

NAMES = {
    "n": "N",
    "normal": "N",
    "normal operation": "N",
    "d": "D",
    "deep": "D",
    "deep reasoning": "D",
    "r": "R",
    "reflection": "R",
    "self-reflection": "R",
    "self reflection": "R",
    "e": "E",
    "exploration": "E",
    "self-exploration": "E",
    "self exploration": "E",
}
THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
OBJECT = re.compile(r"\{[^{}]*\}")
WORDS = re.compile(
    r"\b(normal operation|deep reasoning|self[- ]reflection|self[- ]exploration|exploration"
    r"|reflection)\b",
    re.IGNORECASE,
)
LETTER = re.compile(r"(?<![A-Za-z])([NDRE])(?![A-Za-z])")


def parse_label(answer: str) -> tuple[str, float | None] | None:
    """(behavior, confidence or None) from a model's answer, or None if it names no behavior.

    Tries JSON objects first (also inside code fences or after a reasoning model's <think>),
    then a behavior name, then a lone N/D/R/E in a short answer.
    """
    text = THINKING.sub("", answer).strip()
    for match in OBJECT.finditer(text):
        try:
            data = json.loads(match.group())
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        value = data.get("behavior", data.get("label"))
        behavior = NAMES.get(value.strip().lower()) if isinstance(value, str) else None
        if behavior:
            return behavior, _confidence(data.get("confidence"))
    word = WORDS.search(text)
    if word:
        return NAMES[word.group(1).lower().replace("-", " ").replace("self ", "self-")], None
    letter = LETTER.search(text) if len(text) <= 40 else None
    return (letter.group(1), None) if letter else None


def _confidence(value: Any) -> float | None:
    """A probability in [0, 1]; percentages are scaled; anything else is unknown (None)."""
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if 1 < value <= 100:
        value = value / 100
    return float(value) if 0 <= value <= 1 else None


@dataclass(frozen=True)
class Settings:
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = llm_defaults.API_KEY_ENV
    context: int = 3  # previous steps shown with the step
    concurrency: int = llm_defaults.CONCURRENCY
    timeout: float = llm_defaults.TIMEOUT_S
    max_retries: int = llm_defaults.MAX_RETRIES
    backoff: float = llm_defaults.BACKOFF_S

    @classmethod
    def from_env(cls) -> Settings:
        found = {key: os.environ[name] for key, name in ENV.items() if os.environ.get(name)}
        return cls()._with(found)

    def _with(self, values: dict[str, Any]) -> Settings:
        unknown = set(values) - set(ENV)
        if unknown:
            raise LLMError(f"unknown llm pre-labeler option(s): {', '.join(sorted(unknown))}")
        types = {
            "context": int,
            "concurrency": int,
            "timeout": float,
            "max_retries": int,
            "backoff": float,
        }
        return replace(self, **{k: types.get(k, str)(v) for k, v in values.items()})


class LLMPrelabeler:
    """Labels each step from the question, the previous `context` steps and the step itself."""

    name = "llm"
    description = "a chat model labels each step (configure BONDSCOPE_LLM_BASE_URL and _MODEL)"

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings  # None: read the environment each time

    @property
    def settings(self) -> Settings:
        return self._settings or Settings.from_env()

    @property
    def version(self) -> str:
        """The model's name: a different model is a different annotator."""
        return self.settings.model or "unconfigured"

    def configure(self, **options: Any) -> LLMPrelabeler:
        """A configured copy (base_url, model, api_key_env, context, concurrency, timeout, ...)."""
        return LLMPrelabeler(self.settings._with(options))

    def predict(self, traces: Sequence[Trace]) -> list[list[StepPrediction]]:
        settings = self.settings
        if not settings.base_url or not settings.model:
            raise LLMError(
                "the llm pre-labeler is not configured: set BONDSCOPE_LLM_BASE_URL and "
                f"BONDSCOPE_LLM_MODEL (and the key in {llm_defaults.API_KEY_ENV}, or the variable "
                "named by BONDSCOPE_LLM_API_KEY_ENV)"
            )
        client = OpenAIChatClient(
            settings.base_url,
            settings.model,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            backoff=settings.backoff,
            concurrency=settings.concurrency,
        )
        jobs = [(trace, index) for trace in traces for index in range(len(trace.steps or []))]
        with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
            try:
                predictions = list(
                    pool.map(lambda job: self._label(client, settings.context, *job), jobs)
                )
            except BaseException:  # Ctrl+C or a failed step: end the requests still in flight
                client.close()
                raise
        grouped: list[list[StepPrediction]] = []
        position = 0
        for trace in traces:
            count = len(trace.steps or [])
            grouped.append(predictions[position : position + count])
            position += count
        return grouped

    def _label(
        self, client: OpenAIChatClient, context: int, trace: Trace, index: int
    ) -> StepPrediction:
        steps = trace.steps or []
        texts = [trace.text[s.start : s.end] for s in steps[max(0, index - context) : index + 1]]
        *previous, current = texts
        lines = [f"Question:\n{trace.question or '(not given)'}", ""]
        if previous:
            lines.append("Previous steps:")
            first = index - len(previous)
            lines += [f"[step {first + i + 1}] {text}" for i, text in enumerate(previous)]
            lines.append("")
        lines += [f"Current step (step {index + 1}):", current, "", "Label the current step."]
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ]
        answer = ""
        for _ in range(2):  # one more try when the answer names no behavior
            answer = client.chat(messages, temperature=0, max_tokens=64)
            parsed = parse_label(answer)
            if parsed is not None:
                behavior, confidence = parsed
                return StepPrediction(behavior, confidence)  # type: ignore[arg-type] # None: unknown
        raise LLMError(
            f"trace {trace.id!r} step {index}: the model's answer names no behavior "
            f"({', '.join(BEHAVIORS)}): {answer[:200]!r}"
        )


@hookimpl
def register_prelabelers(register) -> None:  # noqa: ANN001 - the host's register callback
    register(LLMPrelabeler())
