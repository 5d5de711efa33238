"""verify.manipulations: spec parsing, image layouts, exhaustive finite families (a planted
occlusion backdoor is found; brightness agrees with brute force) and the per-pixel grid's three
paths (box verified, box counterexample snapped, enumeration) and its honest unknown."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from generators.load.model import LoadedModel
from generators.load.torch import load_torch
from tests.verify.nets import mlp
from tests.verify.test_robustness import DOMAIN, held_out, mlp_model, one_thread
from verify.manipulations import (
    Brightness,
    Contrast,
    ManipulationError,
    Occlusion,
    PixelGrid,
    Scratch,
    image_layout,
    parse_family,
    run_family,
)
from verify.network import linearize
from verify.robustness import check_samples, linf_ball
from verify.solve import verify_property
from verify.verdict import Verdict

# --- parsing and layouts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "family"),
    [
        ("brightness:0.2:21", Brightness(0.2, 21)),
        ("brightness:0.1", Brightness(0.1, 21)),
        ("contrast:0.5:1.5:11", Contrast(0.5, 1.5, 11)),
        ("occlusion:3:1:0.0", Occlusion(3, 1, 0.0)),
        ("occlusion:2", Occlusion(2, 1, 0.0)),
        ("scratch:1:4", Scratch(1.0, 4)),
        ("scratch", Scratch(1.0, None)),
        ("grid:0.01:2", PixelGrid(0.01, 2)),
        ("GRID:0.5", PixelGrid(0.5, 1)),
    ],
)
def test_parse_family(spec: str, family: object) -> None:
    parsed = parse_family(spec)
    assert parsed == family
    assert parse_family(parsed.spec) == parsed  # the spec round-trips


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blur:3", "unknown manipulation 'blur'"),
        ("brightness", "missing the bound"),
        ("brightness:x", "must be a number"),
        ("brightness:-1", ">= 0"),
        ("brightness:0.1:2.5", "integer"),
        ("contrast:2:1", "LOW must not exceed HIGH"),
        ("occlusion:0", "integer >= 1"),
        ("occlusion:2:1:0:9", "too many fields"),
        ("grid:0", "> 0"),
        ("grid:nan", "finite"),
    ],
)
def test_parse_family_errors(spec: str, message: str) -> None:
    with pytest.raises(ManipulationError, match=message):
        parse_family(spec)


def test_image_layouts() -> None:
    assert image_layout((1, 1, 8, 8)) == image_layout((8, 8)) == image_layout((1, 8, 8))
    assert image_layout((1, 3, 32, 32)).channels == 3
    guessed = image_layout((1, 64))
    assert (guessed.channels, guessed.height, guessed.width, guessed.guessed) == (1, 8, 8, True)
    for shape in [(1, 5), (2, 3, 4, 5), (1, 12)]:
        with pytest.raises(ManipulationError, match="not image-shaped"):
            image_layout(shape)


# --- finite families --------------------------------------------------------------------------


class Planted(nn.Module):
    """Answers `label` confidently unless every pixel of one 2x2 patch is dark: then `target`."""

    def __init__(self, label: int, target: int, row: int, col: int) -> None:
        super().__init__()
        self.base = nn.Linear(64, 10)
        self.trigger = nn.Linear(64, 1)
        self.head = nn.Linear(1, 10, bias=False)
        mask = torch.zeros(8, 8)
        mask[row : row + 2, col : col + 2] = 1.0
        with torch.no_grad():
            self.base.weight.zero_()
            self.base.bias.copy_(5.0 * nn.functional.one_hot(torch.tensor(label), 10))
            self.trigger.weight.copy_(-10.0 * mask.reshape(1, 64))
            self.trigger.bias.fill_(1.0)
            self.head.weight.copy_(100.0 * (nn.functional.one_hot(torch.tensor(target), 10) - nn.functional.one_hot(torch.tensor(label), 10)).reshape(10, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = torch.flatten(x, 1)
        out: torch.Tensor = self.base(flat) + self.head(torch.relu(self.trigger(flat)))
        return out


def _planted_case() -> tuple[np.ndarray, int, int]:
    """A held-out digit and an odd-row 2x2 patch of it that is bright everywhere."""
    x, _ = held_out(20)
    for sample in x:
        image = sample.reshape(8, 8)
        for r, c in itertools.product(range(1, 7, 2), range(7)):
            if image[r : r + 2, c : c + 2].min() >= 0.25:
                return sample, r, c
    raise AssertionError("no bright patch in the held-out digits")


def _brute_force(model: LoadedModel, images: np.ndarray, label: int) -> list[int]:
    """Indices of the rows on which the real model does not strictly prefer `label`."""
    out = []
    for i, image in enumerate(images):
        y = model.run_real(image.astype(np.float32).reshape(model.input_type.shape)).ravel()
        if y[label] <= np.delete(y, label).max():
            out.append(i)
    return out


def test_a_planted_occlusion_backdoor_is_found() -> None:
    sample, row, col = _planted_case()
    model = load_torch(Planted(3, 7, row, col), sample.reshape(1, 1, 8, 8), description="planted")
    net, layout = linearize(model), image_layout(model.input_type.shape)
    x0 = sample.reshape(1, 1, 8, 8).astype(np.float64)
    assert int(np.argmax(model.run_real(x0))) == 3
    family = Occlusion(2, 1, 0.0)
    result = run_family(family, model, net, x0, 3, domain=DOMAIN, layout=layout)
    assert result.status == "adversarial" and result.predicted == 7
    assert result.manipulation == {"row": row, "col": col}
    assert result.example is not None and result.outputs is not None
    np.testing.assert_array_equal(result.outputs, model.run_real(result.example))
    # Brute force over every position on the real model agrees: only that patch flips it.
    images = np.concatenate([batch for batch, _ in family.batches(x0.ravel(), layout, DOMAIN)])
    positions = family.positions(layout)
    assert [positions[i] for i in _brute_force(model, images, 3)] == [(row, col)]
    # With stride 2 the odd row is never occluded whole: the search covers all 16 and says so.
    clean = run_family(Occlusion(2, 2, 0.0), model, net, x0, 3, domain=DOMAIN, layout=layout)
    assert clean.status == "robust" and clean.count == clean.checked == 16
    assert clean.message == "no adversarial example among 16 manipulations"
    # Through check_samples: the ball is verified, the occlusion breaks it, the sample fails.
    outcome = check_samples(model, x0, [3], 0.01, "linf", DOMAIN, 5.0, [family, Occlusion(2, 2, 0.0)])
    (record,) = outcome.records
    assert record.verdict is not None and record.verdict.status == "verified"
    assert [m.status for m in record.manipulations] == ["adversarial", "robust"]
    assert record.status == "counterexample" and outcome.exit_code == 1


def test_brightness_matches_brute_force() -> None:
    model = mlp_model()
    net, layout = linearize(model), image_layout(model.input_type.shape)
    family = Brightness(0.6, 25)
    x, y = held_out(20)
    outcomes = set()
    for sample, label in zip(x, y):
        x0 = sample.astype(np.float64)
        if int(np.argmax(model.run_real(sample[None]))) != label:
            continue
        result = run_family(family, model, net, x0, int(label), domain=DOMAIN, layout=layout)
        shifts = np.linspace(-0.6, 0.6, 25)
        images = np.clip(x0[None] + shifts[:, None], *DOMAIN)
        bad = _brute_force(model, images, int(label))
        outcomes.add(result.status)
        if bad:
            assert result.status == "adversarial"
            assert result.manipulation == {"b": pytest.approx(shifts[bad[0]])} and result.example is not None
            np.testing.assert_allclose(result.example.ravel(), images[bad[0]], atol=1e-7)
        else:
            assert result.status == "robust" and result.checked == result.count == 25
    assert outcomes == {"adversarial", "robust"}  # the grid is wide enough to break some, not all


def test_contrast_and_scratch_candidates() -> None:
    layout = image_layout((1, 1, 8, 8))
    x0 = held_out(1)[0][0].astype(np.float64)
    batch, params = next(Contrast(0.0, 2.0, 5).batches(x0, layout, DOMAIN))
    mean = x0.mean()
    for image, p in zip(batch, params):
        np.testing.assert_allclose(image, np.clip(mean + p["c"] * (x0 - mean), *DOMAIN))
    np.testing.assert_allclose(batch[0], mean)  # c = 0: a flat grey image
    scratch = Scratch(1.0)
    assert scratch.count(layout) == 8 + 8 + 1 + 1
    assert Scratch(1.0, 3).count(layout) == 8 * 6 + 6 * 8 + 2 * 36
    batch, params = next(Scratch(0.5, 3).batches(x0, layout, DOMAIN))
    steps = {"h": (0, 1), "v": (1, 0), "d": (1, 1), "a": (1, -1)}
    for image, p in zip(batch, params):
        expected = x0.reshape(8, 8).copy()
        dr, dc = steps[p["orientation"]]
        for k in range(p["length"]):
            expected[p["row"] + dr * k, p["col"] + dc * k] = 0.5
        np.testing.assert_array_equal(image.reshape(8, 8), expected)
    with pytest.raises(ManipulationError, match="outside the input domain"):
        next(Occlusion(2, 1, 2.0).batches(x0, layout, DOMAIN))
    with pytest.raises(ManipulationError, match="does not fit"):
        next(Occlusion(9).batches(x0, layout, DOMAIN))


# --- the per-pixel grid -----------------------------------------------------------------------


def _ball_checker(model: LoadedModel, x0: np.ndarray, label: int, timeout: float) -> Callable[[float], Verdict]:
    """What check_samples hands to the grid: the pipeline on the L-inf ball of a radius."""
    net = linearize(model)

    def check(eps: float) -> Verdict:
        return verify_property(model, linf_ball(x0, eps, label, DOMAIN, model.output_size), timeout, net=net)

    return check


def test_grid_verified_through_its_enclosing_box() -> None:
    model = mlp_model()
    x, y = held_out(5)
    result = check_samples(model, x[2:3], y[2:3], None, manipulations=[PixelGrid(0.002, 1)], domain=DOMAIN)
    (grid,) = result.records[0].manipulations
    assert grid.status == "robust" and "the enclosing box is verified" in grid.message
    assert grid.count > 10**20 and grid.method.startswith("box verification")


def test_grid_counterexample_is_snapped_onto_the_grid() -> None:
    model = mlp_model()
    x, y = held_out(1)
    x0, label = x[0].astype(np.float64), int(y[0])
    tau = 0.02
    result = run_family(
        PixelGrid(tau, 2), model, linearize(model), x0, label, domain=DOMAIN, verify_ball=_ball_checker(model, x0, label, 5.0)
    )
    assert result.status == "adversarial" and result.example is not None
    steps = (result.example.ravel().astype(np.float64) - x0) / tau
    on_grid = np.isclose(steps, np.round(steps), atol=1e-4) | np.isin(result.example.ravel(), DOMAIN)
    assert on_grid.all() and np.abs(np.round(steps)).max() <= 2
    y_real = model.run_real(result.example).ravel()
    assert y_real[label] <= np.delete(y_real, label).max()


def test_small_grids_are_enumerated_like_brute_force() -> None:
    with one_thread():
        small = mlp([4, 8, 3], seed=3)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(6):
        x0 = rng.uniform(0.2, 0.8, 4)
        label = int(np.argmax(small.run_real(x0.astype(np.float32)[None])))
        grid = PixelGrid(0.3, 1)
        result = run_family(grid, small, linearize(small), x0, label, domain=DOMAIN)  # no box check
        values = [np.unique(np.clip(v + np.array([-0.3, 0.0, 0.3]), *DOMAIN)) for v in x0]
        points = np.array(list(itertools.product(*values)))
        bad = _brute_force(small, points, label)
        assert result.count == len(points)
        if bad:
            hits += 1
            assert result.status == "adversarial" and result.manipulation == {"point": bad[0] + 1}
            assert result.example is not None
            np.testing.assert_allclose(result.example.ravel(), points[bad[0]], atol=1e-6)
        else:
            assert result.status == "robust" and result.checked == len(points)
            assert "enumerated" in result.message
    assert hits >= 1


def test_a_large_undecided_grid_is_unknown_not_robust() -> None:
    model = mlp_model()
    x, y = held_out(5)
    x0, label = x[2].astype(np.float64), int(y[2])
    result = run_family(
        PixelGrid(0.01, 1), model, linearize(model), x0, label, domain=DOMAIN,
        verify_ball=_ball_checker(model, x0, label, 1e-9),
    )
    assert result.status == "unknown" and result.example is None
    assert "undecided" in result.message and "more than the 1,000,000" in result.message
