"""Span arithmetic shared by the segmenters: paragraphs, sentences, trimming whitespace."""

from __future__ import annotations

import re

from bondscope.domain import Step

BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# A sentence ends at . ! or ? (optionally followed by closing quotes or brackets) and whitespace.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def trimmed(text: str, start: int, end: int) -> Step | None:
    """The span without surrounding whitespace, or None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Step(start, end) if end > start else None


def split_spans(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[Step]:
    """Pieces of text[start:end] between matches of `separator`, trimmed, empty ones dropped."""
    spans: list[Step] = []
    position = start
    for match in separator.finditer(text, start, end):
        piece = trimmed(text, position, match.start())
        if piece:
            spans.append(piece)
        position = match.end()
    piece = trimmed(text, position, end)
    if piece:
        spans.append(piece)
    return spans


def paragraphs(text: str, start: int, end: int) -> list[Step]:
    return split_spans(text, start, end, BLANK_LINE)


def sentences(text: str, start: int, end: int) -> list[Step]:
    """Sentences inside each paragraph: a blank line always ends a sentence."""
    return [
        sentence
        for paragraph in paragraphs(text, start, end)
        for sentence in split_spans(text, paragraph.start, paragraph.end, SENTENCE_END)
    ]
