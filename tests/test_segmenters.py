from bondscope.domain import Step, thinking_span
from bondscope.plugin_manager import Plugins
from bondscope.plugins.given_segmenter import GivenSegmenter
from bondscope.plugins.paragraph_segmenter import ParagraphSegmenter
from bondscope.plugins.sentence_segmenter import SentenceSegmenter
from bondscope.services.importing import import_paths
from bondscope.services.segmenting import resegment
from bondscope.store import Store

from tests.helpers import record, write_jsonl


def pieces(text, steps):
    return [text[s.start : s.end] for s in steps]


LONG_A = "We expand the product and collect the terms carefully here."
LONG_B = "Then we compare the coefficients on both sides of the equation."


def test_thinking_span_excludes_tags_and_answer():
    text = "<think>\nreasoning here\n</think>\n\nThe answer is 4."
    start, end = thinking_span(text)
    assert text[start:end] == "\nreasoning here\n"
    assert thinking_span("no tags at all") == (0, 14)
    assert thinking_span("thinking only</think>answer") == (0, 13)


def test_paragraph_splits_on_blank_lines_and_trims():
    text = f"  {LONG_A}\n\n \n{LONG_B}  \n"
    assert pieces(text, ParagraphSegmenter().segment(text, (0, len(text)), None)) == [
        LONG_A,
        LONG_B,
    ]


def test_tiny_fragments_merge_into_previous_or_next():
    text = f"{LONG_A}\n\nx = 4\n\nNow:\n\n{LONG_B}"
    steps = ParagraphSegmenter().segment(text, (0, len(text)), None)
    assert pieces(text, steps) == [f"{LONG_A}\n\nx = 4", f"Now:\n\n{LONG_B}"]
    first_tiny = f"Hmm.\n\n{LONG_A}"
    steps = ParagraphSegmenter().segment(first_tiny, (0, len(first_tiny)), None)
    assert pieces(first_tiny, steps) == [first_tiny]


def test_long_paragraphs_split_at_sentences():
    sentence = "This sentence has exactly fifty characters in it. "
    text = (sentence * 60).strip()  # 3,000 characters, one paragraph
    steps = ParagraphSegmenter(max_chars=1200).segment(text, (0, len(text)), None)
    assert len(steps) == 3
    assert all(s.end - s.start <= 1200 for s in steps)
    assert all(piece.endswith(".") for piece in pieces(text, steps))


def test_sentence_segmenter():
    text = "First one. Second one? Third!\n\nNew paragraph without end"
    assert pieces(text, SentenceSegmenter().segment(text, (0, len(text)), None)) == [
        "First one.",
        "Second one?",
        "Third!",
        "New paragraph without end",
    ]


def test_given_segmenter_keeps_spans_or_takes_the_whole_region():
    text = "<think> all of it </think> answer"
    given = [Step(8, 11), Step(12, 14)]
    assert GivenSegmenter().segment(text, (7, 18), given) == given
    assert pieces(text, GivenSegmenter().segment(text, (7, 18), None)) == ["all of it"]


def test_segmenting_only_touches_the_thinking_part(tmp_path):
    response = f"<think>\n{LONG_A}\n\n{LONG_B}\n</think>\n\nSo the answer is \\boxed{{4}}."
    path = write_jsonl(tmp_path / "r1.jsonl", [{"question": "q?", "response": response}])
    with Store(tmp_path / "p.db") as store:
        import_paths(store, Plugins(load_entry_points=False), [path])
        (trace,) = store.iter_traces()
    assert pieces(trace.text, trace.steps) == [LONG_A, LONG_B]
    assert trace.answer == "4"


def test_resegment_keeps_labels_of_unchanged_spans_and_reports_the_rest(tmp_path):
    text = f"{LONG_A}\n\n{LONG_B} And a second sentence here.\n\n{LONG_A}"
    paragraphs = ParagraphSegmenter().segment(text, (0, len(text)), None)
    rec = record(
        text=text,
        steps=[{"start": s.start, "end": s.end} for s in paragraphs],
        labels=[
            {"step": 0, "behavior": "N", "annotator": "alice", "confidence": None},
            {"step": 1, "behavior": "D", "annotator": "alice", "confidence": None},
            {"step": 2, "behavior": "R", "annotator": "alice", "confidence": None},
        ],
        bonds=[{"from": 2, "to": 0, "type": "hydrogen", "annotator": "alice"}],
    )
    path = write_jsonl(tmp_path / "t.jsonl", [rec])
    plugins = Plugins(load_entry_points=False)
    with Store(tmp_path / "p.db") as store:
        import_paths(store, plugins, [path])
        report = resegment(store, plugins, "sentence")
        assert (report.changed, report.steps_kept, report.steps_retired) == (1, 2, 1)
        assert [(d.step, d.behavior) for d in report.dropped] == [(1, "D")]
        (trace,) = store.iter_traces()
        assert len(trace.steps) == 4
        kept = {(lb.step, lb.behavior) for lb in trace.labels}
        assert kept == {(0, "N"), (3, "R")}  # step 2 moved to index 3 and kept its label
        assert [(b.source, b.target) for b in trace.bonds] == [(3, 0)]
        # back to the imported spans: the given segmenter restores them
        report = resegment(store, plugins, "given")
        (trace,) = store.iter_traces()
        assert trace.steps == paragraphs
        assert store.count("SELECT COUNT(*) FROM label_events") == 3  # history is never deleted
