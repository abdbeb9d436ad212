"""MOLE-SYN in the app: the Synthesize dialog, the resume list and the fidelity report.

The dialogs only collect choices and show results; `bondscope.services.synthesis` plans, runs,
resumes and measures (in worker threads, see bondscope.ui.workers), exactly as the CLI does. The
API key never passes through here: the dialog asks for the *name* of the environment variable
that holds it, and the backend reads it at each request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from bondscope import llm_defaults
from bondscope.domain import BEHAVIORS
from bondscope.services.labeling import project_choices
from bondscope.services.structure import Selection, presets
from bondscope.services.synthesis import (
    EFFECTIVE_ISOMER_R,
    Connection,
    FidelityReport,
    SynthesisSettings,
    TargetGraph,
    UnfinishedRun,
    graph_from_corpus,
    graph_from_preset,
)
from bondscope.store import Store
from bondscope.ui.metrics.plots import Heatmap
from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ANY = "(any)"
BEST_PRELABELER = "(best available)"


@dataclass(frozen=True)
class GraphChoice:
    """Where the target graph comes from: a preset id, or the project's labels (filtered)."""

    preset: str | None = None
    selection: Selection | None = None
    alpha: float = 0.0

    def build(self, store: Store) -> TargetGraph:
        if self.preset is not None:
            return graph_from_preset(self.preset)
        return graph_from_corpus(store, self.selection or Selection(), self.alpha)


@dataclass(frozen=True)
class SynthesisRequest:
    """Everything the worker needs to plan and run; nothing secret in it."""

    questions: Path
    graph: GraphChoice
    settings: SynthesisSettings
    connection: Connection
    prelabeler: str | None  # what the fidelity report measures with (None: the service picks)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box


def _combo(values: list[str]) -> QComboBox:
    box = QComboBox()
    box.addItem(ANY, None)
    for value in values:
        box.addItem(value, value)
    return box


def connection_fields(base_url: str, api_key_env: str) -> tuple[QLineEdit, QLineEdit]:
    """The base URL box and the key's environment-variable *name* box (validated as a name)."""
    url = QLineEdit(base_url)
    url.setPlaceholderText(llm_defaults.BASE_URL)
    env = QLineEdit(api_key_env)
    env.setValidator(QRegularExpressionValidator(QRegularExpression(ENV_NAME.pattern)))
    env.setToolTip(
        "The name of the environment variable holding the API key (never the key itself): the "
        "key is read at each request and not stored in the project."
    )
    return url, env


class SynthesisDialog(QDialog):
    """Tools > Synthesize: questions, target graph, chat server, sampling and caps."""

    def __init__(
        self,
        store: Store,
        prelabelers: list[str],
        defaults: dict[str, str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Synthesize traces (MOLE-SYN)")
        defaults = defaults or {}
        self.questions = QLineEdit(defaults.get("questions", ""))
        self.questions.setPlaceholderText('questions.jsonl: {"question": ..., "answer": ...}')
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        questions_row = QHBoxLayout()
        questions_row.addWidget(self.questions, 1)
        questions_row.addWidget(browse)

        self.graph = QComboBox()
        for preset in presets().values():
            self.graph.addItem(f"preset: {preset.name} ({preset.id})", preset.id)
        self.graph.addItem("current corpus (filters below)", None)
        choices = project_choices(store)
        self.annotator = _combo(choices.annotators)
        self.model_filter = _combo(choices.models)
        self.alpha = QDoubleSpinBox()
        self.alpha.setDecimals(4)
        self.alpha.setRange(0.0, 10.0)
        self.alpha.setSingleStep(0.001)
        self.alpha.setValue(0.001)
        self.alpha.setToolTip("Smoothing, so that a behavior never left does not stop a walk")
        self.graph.currentIndexChanged.connect(self._graph_changed)

        self.base_url, self.api_key_env = connection_fields(
            defaults.get("base_url", llm_defaults.BASE_URL),
            defaults.get("api_key_env", llm_defaults.API_KEY_ENV),
        )
        self.llm_model = QLineEdit(defaults.get("model", ""))
        self.llm_model.setPlaceholderText("e.g. Qwen/Qwen2.5-7B-Instruct")
        self.n = _spin(0, 1_000_000, 0)
        self.n.setSpecialValueText("one per question")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.start = QComboBox()
        for start in (*BEHAVIORS[3:], *BEHAVIORS[:3], "pi"):  # E first: the default
            self.start.addItem(start)
        self.max_steps = _spin(1, 100_000, SynthesisSettings.max_steps)
        self.max_tokens = _spin(1, 10_000_000, SynthesisSettings.max_tokens)
        self.step_tokens = _spin(1, 1_000_000, SynthesisSettings.step_tokens)
        self.concurrency = _spin(1, 64, llm_defaults.CONCURRENCY)
        self.prelabeler = QComboBox()
        self.prelabeler.addItem(BEST_PRELABELER, None)
        for name in prelabelers:
            self.prelabeler.addItem(name, name)

        form = QFormLayout()
        form.addRow("Questions (JSONL)", questions_row)
        form.addRow("Target graph", self.graph)
        form.addRow("    annotator", self.annotator)
        form.addRow("    model", self.model_filter)
        form.addRow("    smoothing", self.alpha)
        form.addRow("LLM base URL", self.base_url)
        form.addRow("LLM model", self.llm_model)
        form.addRow("API key variable", self.api_key_env)
        form.addRow("Traces (n)", self.n)
        form.addRow("Seed", self.seed)
        form.addRow("Start state", self.start)
        form.addRow("Max steps per trace", self.max_steps)
        form.addRow("Max tokens per trace", self.max_tokens)
        form.addRow("Max tokens per step", self.step_tokens)
        form.addRow("Requests at once", self.concurrency)
        form.addRow("Fidelity measured with", self.prelabeler)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Synthesize")
        self.buttons.accepted.connect(self._check_and_accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._graph_changed()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Questions", self.questions.text(), "JSON Lines (*.jsonl);;All (*)"
        )
        if path:
            self.questions.setText(path)

    def _graph_changed(self) -> None:
        corpus = self.graph.currentData() is None
        for box in (self.annotator, self.model_filter, self.alpha):
            box.setEnabled(corpus)

    def choose_preset(self, preset_id: str | None) -> None:
        """Select a preset by id, or the current corpus with None (for tests and defaults)."""
        self.graph.setCurrentIndex(self.graph.findData(preset_id))

    def problem(self) -> str | None:
        """What keeps the form from being run, in a short sentence; None when it can run."""
        if not Path(self.questions.text()).is_file():
            return "Choose the questions file (JSONL)."
        if not self.base_url.text().strip():
            return "Give the chat server's base URL."
        if not self.llm_model.text().strip():
            return "Give the model name the server knows."
        if not ENV_NAME.fullmatch(self.api_key_env.text()):
            return "The API key variable must be an environment variable name."
        return None

    def _check_and_accept(self) -> None:
        problem = self.problem()
        self.error.setText(problem or "")
        if problem is None:
            self.accept()

    def request(self) -> SynthesisRequest:
        preset_id = self.graph.currentData()
        graph = (
            GraphChoice(preset=preset_id)
            if preset_id is not None
            else GraphChoice(
                selection=Selection(
                    model=self.model_filter.currentData(), annotator=self.annotator.currentData()
                ),
                alpha=self.alpha.value(),
            )
        )
        settings = SynthesisSettings(
            n=self.n.value() or None,
            start=self.start.currentText(),
            seed=self.seed.value(),
            max_steps=self.max_steps.value(),
            max_tokens=self.max_tokens.value(),
            step_tokens=self.step_tokens.value(),
        )
        return SynthesisRequest(
            Path(self.questions.text()),
            graph,
            settings,
            connection(
                self.base_url.text(),
                self.llm_model.text(),
                self.api_key_env.text(),
                self.concurrency.value(),
            ),
            self.prelabeler.currentData(),
        )


def connection(base_url: str, model: str, api_key_env: str, concurrency: int) -> Connection:
    return Connection(
        base_url.strip(),
        model.strip(),
        options={"api_key_env": api_key_env, "concurrency": concurrency},
    )


class ResumeDialog(QDialog):
    """Tools > Resume Synthesis Run: pick an unfinished run; the server may move, the model not."""

    def __init__(self, runs: list[UnfinishedRun], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Resume a synthesis run")
        self.runs = runs
        self.list = QListWidget()
        for run in runs:
            item = QListWidgetItem(run.describe())
            item.setData(Qt.ItemDataRole.UserRole, run.run_id)
            self.list.addItem(item)
        self.base_url, self.api_key_env = connection_fields("", llm_defaults.API_KEY_ENV)
        self.model = QLabel()
        form = QFormLayout()
        form.addRow("LLM base URL", self.base_url)
        form.addRow("LLM model", self.model)
        form.addRow("API key variable", self.api_key_env)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Resume")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.currentRowChanged.connect(self._chosen)
        self.list.itemDoubleClicked.connect(lambda _: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Unfinished runs (stored steps are kept and never asked again):"))
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.resize(640, 320)
        if runs:
            self.list.setCurrentRow(0)

    def _chosen(self, row: int) -> None:
        if 0 <= row < len(self.runs):
            run = self.runs[row]
            self.base_url.setText(run.base_url)
            self.model.setText(run.model)
            self.api_key_env.setText(run.api_key_env)

    def chosen(self) -> tuple[int, Connection]:
        run = self.runs[self.list.currentRow()]
        return run.run_id, connection(
            self.base_url.text(), run.model, self.api_key_env.text(), run.concurrency
        )


def number(value: float | None) -> str:
    """Three decimals; r of a constant matrix is NaN (or null once stored): "n/a"."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def fidelity_summary(report: FidelityReport) -> str:
    """The headline of the report, as rich text."""
    r = report.pearson_r
    isomer = (
        f"<b>effective semantic isomer</b> (r ≥ {EFFECTIVE_ISOMER_R})"
        if report.effective_isomer
        else f"<b>not</b> an effective semantic isomer (r < {EFFECTIVE_ISOMER_R})"
    )
    lines = [
        f"Run {report.run_id}: {report.traces} traces, {report.steps} steps, measured with "
        f"{report.prelabeler} ({report.annotator}, fidelity run {report.fidelity_run}).",
        f"Accuracy (measured = intended): <b>{report.accuracy:.3f}</b>",
        f"Pearson r(target, measured): <b>{number(r)}</b>: {isomer}",
        f"Pearson r(target, intended walks): {number(report.pearson_r_intended)}",
    ]
    if report.answers.get("checked"):
        lines.append(
            f"Answers: {report.answers['correct']} of {report.answers['checked']} match the gold"
        )
    return "<br>".join(lines)


def matrix_texts(P: np.ndarray) -> list[list[str]]:
    return [[f"{100 * P[i, j]:.0f}" for j in range(4)] for i in range(4)]


class FidelityDialog(QDialog):
    """The fidelity report: headline numbers, recall per behavior, target and measured graphs."""

    def __init__(self, report: FidelityReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle(f"Fidelity of synthesis run {report.run_id}")
        self.summary = QLabel(fidelity_summary(report))
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(len(BEHAVIORS), 4)
        self.table.setHorizontalHeaderLabels(["intended", "measured", "agree", "recall"])
        self.table.setVerticalHeaderLabels(list(BEHAVIORS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for row, behavior in enumerate(BEHAVIORS):
            stats = report.per_behavior[behavior]
            cells = (stats["intended"], stats["measured"], stats["agree"], stats["recall"])
            for column, value in enumerate(cells):
                text = f"{value:.3f}" if column == 3 else str(value)
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        height = self.table.horizontalHeader().height() + 4 * self.table.rowHeight(0) + 4
        self.table.setFixedHeight(height)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(560, 300)
        self.target_heat = Heatmap(self.graphics.addPlot(row=0, col=0, title="target P (%)"))
        self.measured_heat = Heatmap(self.graphics.addPlot(row=0, col=1, title="measured P (%)"))
        for heat, matrix in (
            (self.target_heat, report.target),
            (self.measured_heat, report.measured),
        ):
            P = np.asarray(matrix, dtype=float)
            heat.set_matrix(100 * P, matrix_texts(P), 100)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("Per behavior (rows of the confusion matrix):"))
        layout.addWidget(self.table)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(buttons)
        self.resize(700, 640)
