"""One step per sentence (ends at . ! ? followed by whitespace, or at a blank line)."""

from __future__ import annotations

from bondscope import hookimpl
from bondscope.domain import Step
from bondscope.text import sentences


class SentenceSegmenter:
    name = "sentence"
    description = "one step per sentence"

    def segment(self, text: str, region: tuple[int, int], given: list[Step] | None) -> list[Step]:
        return sentences(text, *region)


@hookimpl
def register_segmenters(register):
    register(SentenceSegmenter())
