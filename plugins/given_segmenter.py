"""Keep the spans a trace was imported with (e.g. Thought Anchors chunks, ProcessBench steps).

A trace imported without spans becomes a single step covering its thinking part.
"""

from __future__ import annotations

from bondscope import hookimpl
from bondscope.domain import Step
from bondscope.text import trimmed


class GivenSegmenter:
    name = "given"
    description = "keep the imported spans"

    def segment(self, text: str, region: tuple[int, int], given: list[Step] | None) -> list[Step]:
        if given:
            return list(given)
        whole = trimmed(text, *region)
        return [whole] if whole else []


@hookimpl
def register_segmenters(register):
    register(GivenSegmenter())
