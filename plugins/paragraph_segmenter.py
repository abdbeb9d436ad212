"""The default segmenter: one step per paragraph, with tiny fragments merged and long ones split.

Thresholds (paper.md §8 A1; about 4 characters per token):
- a paragraph shorter than `min_chars` (40, ~10 tokens) joins the previous step, or the next one
  when it ends with ':' (it introduces what follows) or is the first of the trace;
- a paragraph longer than `max_chars` (1200, ~300 tokens) is cut at sentence ends into pieces of
  at most `max_chars` (a single longer sentence stays whole).
"""

from __future__ import annotations

from bondscope import hookimpl
from bondscope.domain import Step
from bondscope.text import paragraphs, sentences


class ParagraphSegmenter:
    name = "paragraph"
    description = "blank-line paragraphs; tiny fragments merged, very long ones split at sentences"

    def __init__(self, min_chars: int = 40, max_chars: int = 1200) -> None:
        self.min_chars = min_chars
        self.max_chars = max_chars

    def segment(self, text: str, region: tuple[int, int], given: list[Step] | None) -> list[Step]:
        pieces: list[Step] = []
        for paragraph in paragraphs(text, *region):
            if paragraph.end - paragraph.start > self.max_chars:
                pieces.extend(self._split_long(text, paragraph))
            else:
                pieces.append(paragraph)
        return self._merge_tiny(text, pieces)

    def _split_long(self, text: str, paragraph: Step) -> list[Step]:
        chunks: list[Step] = []
        current: Step | None = None
        for sentence in sentences(text, paragraph.start, paragraph.end):
            if current is not None and sentence.end - current.start <= self.max_chars:
                current = Step(current.start, sentence.end)
            else:
                if current is not None:
                    chunks.append(current)
                current = sentence
        if current is not None:
            chunks.append(current)
        return chunks

    def _merge_tiny(self, text: str, pieces: list[Step]) -> list[Step]:
        merged: list[Step] = []
        carry: Step | None = None  # a fragment waiting to join the next piece
        for piece in pieces:
            if carry is not None:
                piece = Step(carry.start, piece.end)
                carry = None
            tiny = piece.end - piece.start < self.min_chars
            if tiny and (not merged or text[piece.end - 1] == ":"):
                carry = piece
            elif tiny:
                merged[-1] = Step(merged[-1].start, piece.end)
            else:
                merged.append(piece)
        if carry is not None:
            if merged:
                merged[-1] = Step(merged[-1].start, carry.end)
            else:
                merged.append(carry)
        return merged


@hookimpl
def register_segmenters(register):
    register(ParagraphSegmenter())
