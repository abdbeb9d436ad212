"""A Bondscope plugin: split solutions at "Step 1:", "Step 2:", ... markers."""

import re

from bondscope import Step, hookimpl

MARKER = re.compile(r"(?m)^\s*Step \d+[:.]")


class NumberedStepsSegmenter:
    name = "numbered-steps"
    description = "one step per 'Step N:' marker"

    def segment(self, text, region, given):
        start, end = region
        starts = [m.start() for m in MARKER.finditer(text, start, end)] or [start]
        if starts[0] > start and text[start : starts[0]].strip():
            starts.insert(0, start)  # text before the first marker is a step too
        steps = []
        for begin, finish in zip(starts, starts[1:] + [end], strict=True):
            piece = text[begin:finish]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right > left:
                steps.append(Step(begin + left, begin + right))
        return steps


@hookimpl
def register_segmenters(register):
    register(NumberedStepsSegmenter())
