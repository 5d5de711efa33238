"""Scoring supervisors: the exact AUC (against scikit-learn, ties included) and ROC curve, the
result per category on the digits MLP, the mix spec and generation, the report JSON schema and
the HTML page (table, SVG, escaping)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.mix import DEFAULTS, generate_mix, parse_mix, resolve_mix
from generators.inputs.result import HardInputs
from generators.inputs.supervise import auc_roc, roc_curve, score_supervisors
from generators.inputs.supervise_html import image_grid, render_html, thumbnails
from generators.inputs.supervise_report import check_report, report_dict
from generators.inputs.supervisors import build_supervisors
from tests.generators.inputs.digits import CLASSES, SHAPE, digits
from tests.generators.inputs.test_supervisors import local_pgd, one_thread_mlp

scores = st.lists(st.integers(-3, 3).map(float) | st.floats(-2, 2, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(scores, scores)
def test_auc_equals_sklearn_with_ties(negatives: list[float], positives: list[float]) -> None:
    labels = [0] * len(negatives) + [1] * len(positives)
    expected = roc_auc_score(labels, negatives + positives)
    auc = auc_roc(np.array(negatives), np.array(positives))
    assert auc == pytest.approx(expected, abs=1e-12)
    fpr, tpr = roc_curve(np.array(negatives), np.array(positives), limit=None)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # the trapezoid area under the full curve is the AUC: tied scores make diagonal steps
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == pytest.approx(auc, abs=1e-12)


def test_auc_edge_cases() -> None:
    assert auc_roc(np.zeros(0), np.ones(3)) is None and auc_roc(np.ones(3), np.zeros(0)) is None
    assert auc_roc(np.zeros(5), np.zeros(4)) == 0.5
    assert auc_roc(np.zeros(5), np.ones(4)) == 1.0 and auc_roc(np.ones(5), np.zeros(4)) == 0.0
    assert auc_roc(np.array([0.0, np.inf]), np.array([np.inf])) == 0.75
    fpr, tpr = roc_curve(np.arange(1000.0), np.arange(1000.0) + 0.5, limit=50)
    assert len(fpr) <= 50 and (fpr[0], tpr[-1]) == (0.0, 1.0)


@pytest.fixture(scope="module")
def mlp() -> ModelAdapter:
    return adapt(one_thread_mlp(), SHAPE, description='digits <script>alert("x")</script> & co')


def _set(category: str, method: str, x: np.ndarray, adapter: ModelAdapter, labels: np.ndarray | None) -> HardInputs:
    return HardInputs(category, method, x, np.arange(len(x)), labels, adapter.probabilities(x), {"made": "in the test"})


@pytest.fixture(scope="module")
def sets(mlp: ModelAdapter) -> list[HardInputs]:
    _, _, x_test, y_test = digits()
    adv = local_pgd(mlp, x_test[:80], y_test[:80])
    wrong = mlp.predict(adv)
    noise = np.random.default_rng(0).uniform(0, 1, (40, *SHAPE)).astype(np.float32)
    dark = np.clip(x_test[:30] * 0.3, 0, 1)
    return [
        # one-hot of a label the model does not give: accuracy on the set must be 0
        _set("adversarial", "local-pgd", adv, mlp, np.eye(CLASSES)[(wrong + 1) % CLASSES]),
        _set("fooling", "noise", noise, mlp, None),
        _set("corrupted", "dark", dark, mlp, np.eye(CLASSES)[y_test[:30]]),
        _set("ambiguous", "none", np.zeros((0, *SHAPE), np.float32), mlp, np.zeros((0, CLASSES))),
    ]


def test_score_supervisors_per_category(mlp: ModelAdapter, sets: list[HardInputs]) -> None:
    x_train, y_train, x_test, y_test = digits()

    def hostile(adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(x).reshape(len(x), -1).std(axis=1))

    hostile.__name__ = "<img src=x onerror=alert(1)>"
    built, unavailable = build_supervisors(["max_softmax", "mahalanobis", hostile], mlp, train=(x_train, y_train))
    lines: list[str] = []
    result = score_supervisors(mlp, x_test, sets, built, nominal_y=y_test, unavailable={"mc_dropout": "not asked"},
                               progress=lines.append)
    assert [c.category for c in result.categories] == ["adversarial", "fooling", "ambiguous", "corrupted"]
    info = {c.category: c for c in result.categories}
    assert info["ambiguous"].count == 0 and info["adversarial"].accuracy == 0.0
    assert info["fooling"].accuracy is None and info["corrupted"].accuracy is not None
    assert result.nominal_accuracy is not None and result.nominal_accuracy > 0.95
    assert result.auc("max_softmax", "ambiguous") is None
    for name in ("max_softmax", "mahalanobis"):
        for category in ("adversarial", "fooling"):
            auc = result.auc(name, category)
            assert auc is not None and auc > 0.7, (name, category, auc)
    table = "\n".join(result.table())
    assert "no inputs" in table and "mc_dropout: unavailable - not asked" in table
    assert len(lines) == 3 and "scoring max_softmax" in lines[0]

    report = report_dict(result, input_shape=SHAPE, bounds=(0.0, 1.0), num_classes=CLASSES, seed=3,
                         data={"nominal": "test.npz", "train": None, "inputs": None},
                         parameters={"mix": None, "supervisors": list(built)}, sets=sets, command="gauntlet supervise")
    check_report(report)
    assert report["auc"]["max_softmax"]["ambiguous"] is None
    assert report["categories"][0]["methods"] == {"local-pgd": len(sets[0])}
    assert set(report["roc"]) == {"adversarial", "fooling", "ambiguous", "corrupted"}
    json.dumps(report, allow_nan=False)

    page = render_html(report, thumbnails(sets, (0.0, 1.0)))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<table>" in page and page.count("<svg") == 3  # ambiguous has no inputs: no plot
    assert "no inputs in this category" in page and page.count("data:image/png;base64,") == 3 * 8
    for svg in page.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "src=\"http" not in page

    broken = json.loads(json.dumps(report))
    broken["auc"]["max_softmax"]["fooling"] = 1.5
    del broken["versions"]
    with pytest.raises(GauntletError, match="missing 'versions'"):
        check_report(broken)
    broken["versions"] = {}
    with pytest.raises(GauntletError, match=r"1.5 is not in \[0, 1\]"):
        check_report(broken)


def test_scoring_rejects_bad_calls(mlp: ModelAdapter, sets: list[HardInputs]) -> None:
    with pytest.raises(GauntletError, match="no nominal inputs"):
        score_supervisors(mlp, np.zeros((0, *SHAPE), np.float32), sets, {"m": lambda a, x: np.zeros(len(x))})
    with pytest.raises(GauntletError, match="no supervisor"):
        score_supervisors(mlp, digits()[2], sets, {})
    with pytest.raises(GauntletError, match="returned shape"):
        score_supervisors(mlp, digits()[2], sets, {"bad": lambda a, x: np.zeros(3)})


def test_parse_and_resolve_mix() -> None:
    assert parse_mix("adversarial=50,fooling=10, ambiguous=20,corrupted=50") == {
        "adversarial": 50, "fooling": 10, "ambiguous": 20, "corrupted": 50,
    }  # fmt: skip
    mix = parse_mix("adversarial=5:method=cw:confidence=0.5,corrupted=8:families=noise+blur:severity=5")
    assert mix["adversarial"] == {"count": 5, "method": "cw", "confidence": 0.5}
    resolved = resolve_mix(mix)
    assert resolved["adversarial"] == {"count": 5, "method": "cw", "confidence": 0.5}  # no eps for C&W
    assert resolved["corrupted"] == {"count": 8, "families": ["noise", "blur"], "severity": 5}
    assert resolve_mix("adversarial=3")["adversarial"] == {**DEFAULTS["adversarial"], "count": 3}
    for bad, message in [
        ("", "give category=count"), ("adversarial", "write category=count"), ("advers=3", "unknown category"),
        ("fooling=x", "not a whole number"), ("fooling=-1", ">= 0"), ("fooling=1,fooling=2", "given twice"),
        ("fooling=1:steps", "name=value"), ("adversarial=2:method=deepfool", "method 'deepfool'"),
    ]:
        with pytest.raises(GauntletError, match=message):
            resolve_mix(bad)


def test_generate_mix_through_the_generators(mlp: ModelAdapter) -> None:
    _, _, x_test, y_test = digits()
    notes: list[str] = []
    sets = generate_mix(mlp, x_test, y_test, "adversarial=12,corrupted=8,fooling=3,ambiguous=0", seed=1, progress=notes.append)
    by: dict[str, list[HardInputs]] = {}
    for h in sets:
        by.setdefault(h.category, []).append(h)
    assert set(by) == {"adversarial", "corrupted", "fooling", "ambiguous"}
    adv = by["adversarial"][0]
    assert 0 < len(adv) <= 12 and adv.params["eps"] == 0.1 and adv.params["mix"]["count"] == 12
    assert (mlp.predict(adv.x) != y_test[adv.source]).all()  # sources index the caller's samples
    assert np.abs(adv.x - x_test[adv.source]).max() <= 0.1 + 1e-5
    assert [h.method for h in by["corrupted"]] == ["noise", "blur", "contrast", "occlusion"]
    assert sum(len(h) for h in by["corrupted"]) == 8
    assert len(by["fooling"][0]) <= 3 and by["fooling"][0].labels is None
    assert len(by["ambiguous"][0]) == 0
    assert any("adversarial:" in n for n in notes)
    again = generate_mix(mlp, x_test, y_test, "adversarial=12", seed=1)
    np.testing.assert_array_equal(again[0].x, adv.x)
    with pytest.raises(GauntletError, match="takes"):
        generate_mix(mlp, x_test, y_test, {"adversarial": {"count": 2, "epsilon": 0.1}})
    with pytest.raises(GauntletError, match="write two class numbers"):
        generate_mix(mlp, x_test, y_test, "ambiguous=2:pairs=3/8+3/x")
    with pytest.raises(GauntletError, match="families"):
        generate_mix(mlp, x_test, y_test, "corrupted=2:families=noise+fog")


def test_image_grid_layout() -> None:
    x = np.stack([np.full(SHAPE, v, np.float32) for v in (0.0, 0.5, 1.0)])
    grid = image_grid(x, (0.0, 1.0), columns=2, scale=2)
    assert grid.shape == ((8 * 2 + 1) * 2, (8 * 2 + 1) * 2) and grid.dtype == np.uint8
    assert grid[0, 0] == 0 and grid[0, 2 * 9] == 128 and grid[2 * 9, 0] == 255
