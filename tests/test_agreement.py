"""Agreement (services/agreement.py): textbook coefficients, bond matching, a real project, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bondscope.cli import cli
from bondscope.plugin_manager import Plugins
from bondscope.services.agreement import (
    MISSING,
    agreement,
    cohen_kappa,
    confusion,
    gwet_ac1,
    gwet_ac1_multi,
    krippendorff_alpha,
    match_bonds,
)
from bondscope.services.importing import import_paths
from bondscope.services.structure import SelectionError
from bondscope.store import Store
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score

from tests.helpers import write_jsonl
from tests.test_structure import trace_record

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: 4 coders,
# 12 units, values 1-5 (here 0-4), '.' = missing. Published: alpha = 0.743. Gwet's irrCAC ships
# the same table as cac.raw4raters, with AC1 = 0.7754 and alpha = 0.7434.
KRIPPENDORFF = [
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
]


def reliability_data(rows: list[str]) -> np.ndarray:
    """units x raters, 0-based categories, MISSING for '.'."""
    coded = [[MISSING if v == "." else int(v) - 1 for v in row.split()] for row in rows]
    return np.array(coded).T


def test_krippendorff_alpha_textbook_example():
    ratings = reliability_data(KRIPPENDORFF)
    assert krippendorff_alpha(ratings, categories=5) == pytest.approx(0.743, abs=5e-4)
    assert gwet_ac1_multi(ratings, categories=5) == pytest.approx(0.7754, abs=5e-5)


def test_cohen_kappa_and_ac1_textbook_two_by_two():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15. p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4
    # = 0.5, kappa = 0.4. AC1: pi_yes = (25 + 30)/100 = 0.55, p_e = 2 * 0.55 * 0.45 = 0.495,
    # AC1 = (0.7 - 0.495) / 0.505.
    counts = np.array([[20, 5], [10, 15]])
    assert cohen_kappa(counts) == pytest.approx(0.4)
    assert gwet_ac1(counts) == pytest.approx(0.205 / 0.505)


def test_kappa_paradox_where_ac1_stays_high():
    # Gwet (2008): 125 items, 118 agree on "+". p_o = 0.944; kappa's p_e = (123*120 + 2*5)/125^2
    # so kappa < 0, while AC1's p_e = 2 * 0.972 * 0.028 = 0.054432.
    counts = np.array([[118, 5], [2, 0]])
    p_e = (123 * 120 + 2 * 5) / 125**2
    assert cohen_kappa(counts) == pytest.approx((0.944 - p_e) / (1 - p_e))
    assert cohen_kappa(counts) < 0
    assert gwet_ac1(counts) == pytest.approx((0.944 - 0.054432) / (1 - 0.054432))


def test_kappa_matches_scikit_learn_and_undefined_cases_are_nan():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 4, 300))
    assert cohen_kappa(confusion(a, b)) == pytest.approx(cohen_kappa_score(a, b))
    # two raters without missing values: the multi-rater AC1 reduces to the pairwise one
    assert gwet_ac1_multi(np.stack([a, b], axis=1)) == pytest.approx(gwet_ac1(confusion(a, b)))
    assert np.isnan(cohen_kappa(np.diag([5, 0, 0, 0])))  # one category only: p_e = 1
    assert np.isnan(krippendorff_alpha(np.array([[0, 0], [0, 0]])))
    assert np.isnan(cohen_kappa(np.zeros((4, 4))))


def test_greedy_bond_matching_with_tolerance():
    # exact match first: a's (5, 3) takes b's (5, 3), so a's (5, 2) is left unmatched
    match = match_bonds([(1, 5, 2, "hydrogen"), (1, 5, 3, "hydrogen")], [(1, 5, 3, "hydrogen")])
    assert (match.matched, match.precision, match.recall) == (1, 0.5, 1.0)
    assert match.f1 == pytest.approx(2 / 3)
    # one step off on both ends still matches; two steps, another type or trace does not
    assert match_bonds([(1, 6, 2, "vdw")], [(1, 5, 3, "vdw")]).matched == 1
    assert match_bonds([(1, 7, 2, "vdw")], [(1, 5, 2, "vdw")]).matched == 0
    assert match_bonds([(1, 5, 2, "vdw")], [(1, 5, 2, "hydrogen")]).matched == 0
    assert match_bonds([(1, 5, 2, "vdw")], [(2, 5, 2, "vdw")]).matched == 0
    # one-to-one: two bonds of a near one bond of b give one match
    assert match_bonds([(1, 5, 2, "vdw"), (1, 6, 2, "vdw")], [(1, 5, 2, "vdw")]).matched == 1
    assert np.isnan(match_bonds([], []).f1)


def bonded(record: dict, bonds: list[tuple[int, int, str]], annotator: str) -> dict:
    record["bonds"] = [
        {"from": f, "to": t, "type": kind, "annotator": annotator} for f, t, kind in bonds
    ]
    return record


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """alice and bob label traces a and b (bob leaves b3 open); a keyword model labels only a."""
    records = [
        bonded(
            trace_record("a", "m", ["N", "N", "D", "R", "E", "N"], "alice"),
            [(3, 1, "hydrogen"), (5, 0, "hydrogen"), (4, 3, "vdw")],
            "alice",
        ),
        trace_record("b", "m", ["E", "R", "N", "N"], "alice"),
    ]
    second = [
        bonded(
            trace_record("a", "m", ["N", "D", "D", "R", "E", "N"], "bob"),
            [(3, 0, "hydrogen"), (5, 0, "hydrogen"), (4, 1, "vdw")],
            "bob",
        ),
        trace_record("b", "m", ["E", "R", "N", None], "bob"),
        trace_record("a", "m", ["N", "N", "N", "R", "E", "E"], "model:kw@1"),
    ]
    db = tmp_path / "p.db"
    plugins = Plugins(load_entry_points=False)
    with Store(db) as store:
        import_paths(store, plugins, [write_jsonl(tmp_path / "a.jsonl", records)])
        for k, record in enumerate(second):  # same traces again: labels and bonds merge
            import_paths(store, plugins, [write_jsonl(tmp_path / f"b{k}.jsonl", [record])])
    return db


def test_agreement_on_a_real_project(project):
    with Store(project) as store:
        data = agreement(store, ["alice", "bob"])
    pair = data["pairs"][0]
    # 9 steps labeled by both, 8 agree (a1: N vs D). Marginals alice N4 D1 R2 E2, bob N3 D2 R2
    # E2: p_e = 22/81, kappa = (72 - 22) / (81 - 22) = 50/59. AC1: pi = (7, 3, 4, 4)/18,
    # p_e = (77 + 45 + 56 + 56)/324/3 = 13/54, AC1 = (48 - 13) / (54 - 13) = 35/41.
    assert (pair["kind"], pair["steps"]) == ("person-person", 9)
    assert pair["observed"] == pytest.approx(8 / 9)
    assert pair["cohen_kappa"] == pytest.approx(50 / 59)
    assert pair["gwet_ac1"] == pytest.approx(35 / 41)
    assert pair["confusion"] == [[3, 1, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 2]]
    # two raters: o = C + C^T, n = 18, n_c = (7, 3, 4, 4): alpha = 1 - 17 * 2 / (324 - 90)
    assert data["krippendorff_alpha"] == pytest.approx(1 - 34 / 234)
    # multi-rater AC1 takes pi over every rated unit, b3 (alice only, N) included:
    # pi = (4.5, 1.5, 2, 2)/10, p_e = (.2475 + .1275 + .16 + .16)/3
    p_e = (0.2475 + 0.1275 + 0.16 + 0.16) / 3
    assert data["gwet_ac1"] == pytest.approx((8 / 9 - p_e) / (1 - p_e))
    # bonds: (3,1)~(3,0) and (5,0)=(5,0) match; vdw (4,3) vs (4,1) is 2 steps off
    bonds = pair["bonds"]
    assert (bonds["matched"], bonds["a_bonds"], bonds["b_bonds"]) == (2, 3, 3)
    assert bonds["f1"] == pytest.approx(2 / 3)
    assert bonds["by_type"]["hydrogen"]["f1"] == 1.0
    assert bonds["by_type"]["vdw"]["f1"] == 0.0
    assert bonds["by_type"]["covalent"]["f1"] is None  # neither drew one


def test_model_versus_person_uses_the_same_measures(project):
    with Store(project) as store:
        data = agreement(store)  # everyone who labeled
    names = [a["name"] for a in data["annotators"]]
    assert names == ["alice", "bob", "model:kw@1"]
    kinds = {(p["a"], p["b"]): p for p in data["pairs"]}
    model = kinds[("alice", "model:kw@1")]
    # trace a only: N/N N/N D/N R/R E/E N/E -> 4 of 6
    assert (model["kind"], model["steps"], model["observed"]) == ("model-person", 6, 4 / 6)
    assert model["bonds"]["f1"] == 0.0  # alice's 3 bonds in trace a, none from the model
    assert set(data["by_kind"]) == {"model-person", "person-person"}
    assert data["by_kind"]["model-person"]["pairs"] == 2
    assert data["by_kind"]["person-person"]["cohen_kappa"] == pytest.approx(50 / 59)


def test_agreement_needs_two_known_annotators(project):
    with Store(project) as store:
        with pytest.raises(SelectionError, match="at least two"):
            agreement(store, ["alice"])
        with pytest.raises(SelectionError, match="no such annotator: carol"):
            agreement(store, ["alice", "carol"])


def test_agreement_command(project):
    runner = CliRunner()
    result = runner.invoke(
        cli, ["agreement", "--db", str(project), "--annotators", "alice,bob", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pairs"][0]["cohen_kappa"] == pytest.approx(50 / 59)
    text = runner.invoke(cli, ["agreement", "--db", str(project)])
    assert text.exit_code == 0 and "alice vs model:kw@1\tmodel-person\t6" in text.output
    assert "pairs with no step in common" not in text.output
    with Store(project) as store:  # carol labels a trace nobody else did
        record = trace_record("c", "m", ["N", "D"], "carol")
        import_paths(
            store,
            Plugins(load_entry_points=False),
            [write_jsonl(project.with_name("c.jsonl"), [record])],
        )
    text = runner.invoke(cli, ["agreement", "--db", str(project)])
    assert "carol vs" not in text.output and "alice vs bob" in text.output
    assert "(3 pairs with no step in common not shown; --json lists them)" in text.output
    full = json.loads(runner.invoke(cli, ["agreement", "--db", str(project), "--json"]).output)
    assert sum(p["steps"] == 0 for p in full["pairs"]) == 3
    lonely = runner.invoke(cli, ["agreement", "--db", str(project), "--annotators", "alice"])
    assert lonely.exit_code == 1 and "at least two annotators" in lonely.output
