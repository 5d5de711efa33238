"""generators.load.torch: small seeded torch models -> IR; the float64 reference of the IR agrees
with the module, run_real is the module, and what cannot be expressed exactly is refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from generators.ir import graph_from_json, validate
from generators.load.model import LoadedModel, ModelError
from generators.load.torch import load_torch
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs


def ir_output(model: LoadedModel, x: np.ndarray) -> np.ndarray:
    graph = model.graph
    feed = [model.weights[i] if i in model.weights else x for i in range(len(graph.placeholders))]
    results = evaluate(graph, feed, catalog(), wide=True)
    assert results is not None
    return np.asarray(graph_outputs(graph, results, feed)[0], dtype=np.float64)


def module_output(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).double().numpy()


def check_agrees(module: nn.Module, shape: tuple[int, ...], seed: int = 0, trials: int = 3) -> LoadedModel:
    """Loads `module` and compares IR, run_real and the module on random inputs."""
    rng = np.random.default_rng(seed)
    module.eval()
    loaded = load_torch(module, rng.standard_normal(shape).astype(np.float32))
    validate(loaded.graph, catalog())
    assert graph_from_json(loaded.graph.to_json()) == loaded.graph
    assert sorted(loaded.weights) == list(loaded.graph.weight_indices)
    for index, array in loaded.weights.items():
        assert array.dtype == np.float32
        assert array.shape == loaded.graph.placeholders[index].type.shape
    for _ in range(trials):
        x = (2 * rng.standard_normal(shape)).astype(np.float32)
        expected = module_output(module, x)
        assert loaded.output_type.shape == expected.shape
        np.testing.assert_allclose(ir_output(loaded, x), expected, rtol=1e-4, atol=1e-5)
        real = loaded.run_real(x)
        assert real.dtype == np.float64
        np.testing.assert_array_equal(real, expected)
    return loaded


def seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    module = build()
    for m in module.modules():  # non-trivial running statistics, so eval mode matters
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module


# --- the models ------------------------------------------------------------------------------


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 2 * 2, 10),
    )


class Residual(nn.Module):
    """x + f(x), and the torchvision BasicBlock pattern `out += identity` with in-place ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding="same", bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.relu(self.bn1(self.conv1(x)))
        identity = x
        out = self.bn2(self.conv2(x))
        out += identity
        out = self.relu(out)
        return self.head(out.flatten(1))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 3 * 3, 4)
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        x = x.view(x.size(0), -1)
        y = torch.flatten(x, 1) * self.scale
        y = 1.0 - F.linear(y, self.fc.weight, self.fc.bias) / 2
        return torch.cat([y, -y.permute(0, 1)], dim=1)


def activations() -> nn.Module:
    return nn.Sequential(
        nn.Linear(5, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Tanh(),
        nn.Linear(8, 4), nn.Softmax(dim=1),
    )


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, dilation=2, padding=2, padding_mode="reflect")
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool1d(torch.clamp(self.bn(self.conv(x)), -3.0, 0.5), 3, stride=1, padding=1,
                         count_include_pad=False)
        return F.hardtanh(h.transpose(1, 2), -0.1, 0.2).reshape(h.size(0), -1).unsqueeze(1)


class Zoo2d(nn.Module):
    """The less common 2-d mappings: grouped/dilated/strided and replicate-padded convolutions,
    functional conv, padding modules and F.pad, adaptive pooling, divisor_override, channel ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, dilation=2, groups=2, padding=2, padding_mode="replicate")
        self.prelu = nn.PReLU(6)
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))
        self.kernel = nn.Parameter(torch.randn(6, 3, 1, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.wide = nn.Conv2d(6, 6, 7, padding=3, bias=False)  # wider than the catalog's conv pads
        self.norm = nn.LayerNorm([6])
        self.act = nn.Sequential(nn.GELU(approximate="tanh"), nn.ELU(0.5), nn.SiLU(), nn.Hardswish())

    def forward(self, x: torch.Tensor, shift: float = 0.25) -> torch.Tensor:
        h = self.prelu(self.conv(x))
        h = F.conv2d(self.pad(h), self.kernel, groups=2) + shift
        h = F.pad(self.wide(h), (1, 1, 1, 1), mode="reflect")
        h = F.pad(h, (0, 0, 3, 2), mode="replicate")
        a = F.avg_pool2d(h, 2, stride=1, divisor_override=3)
        b = F.adaptive_avg_pool2d(a, (5, 4))
        c = self.pool(b).squeeze(-1).squeeze(-1) + a.mean(dim=(2, 3)) - torch.sum(b, (-1, -2), keepdim=True).view(-1, 6)
        return self.act(self.norm(c))


class ZooFlat(nn.Module):
    """Shape juggling, constants, binary-op forms and the softmax family on flat features."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.register_buffer("offset", torch.linspace(-1, 1, 8))
        self.proj = nn.Parameter(torch.randn(40, 4) / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.clamp(self.fc(x), min=0.0) - torch.add(self.offset, x.sum(1, keepdim=True), alpha=0.5)
        h = torch.clamp(h, max=self.offset + 0.5)  # a tensor bound, folded from a buffer
        g = h.unflatten(1, (2, 4)).transpose(1, 2).permute(0, 2, 1).reshape(x.size(0), -1)
        g = 1.0 - torch.cat([g, g * 2, -g, g / 4, F.relu6(g)], dim=-1).unsqueeze(0).squeeze(0)
        m = torch.matmul(F.hardtanh(g, -2.0, 2.0), self.proj).T.t()
        return F.log_softmax(m, dim=1) + F.softmin(m, 1) + torch.softmax(m, -1).tanh()


@pytest.mark.parametrize(
    ("build", "shape"),
    [(mlp, (1, 6)), (cnn, (1, 3, 16, 16)), (Residual, (2, 4, 5, 5)), (Functional, (1, 1, 8, 8)),
     (activations, (3, 5)), (Conv1dNet, (1, 2, 7)), (Zoo2d, (2, 4, 11, 11)), (ZooFlat, (3, 6))],
    ids=["mlp", "cnn", "residual", "functional", "activations", "conv1d", "zoo-2d", "zoo-flat"],
)
def test_ir_and_run_real_agree_with_the_module(build: Callable[[], nn.Module], shape: tuple[int, ...]) -> None:
    check_agrees(seeded(build), shape)


def test_cnn_maps_to_the_expected_catalog_operators() -> None:
    loaded = check_agrees(seeded(cnn), (1, 3, 16, 16), trials=1)
    ops = loaded.graph.op_names()
    for op in ("conv2d", "batch_norm", "relu", "max_pool2d", "avg_pool2d", "flatten", "linear"):
        assert op in ops
    assert "dropout" not in " ".join(ops)
    assert loaded.input_type.shape == (1, 3, 16, 16) and loaded.output_type.shape == (1, 10)


def test_out_of_domain_parameters_are_expressed_exactly() -> None:
    # slope 2 and clamp bounds outside the catalog's leaky_relu / hardtanh / clip domains
    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(2.0), nn.Hardtanh(-5.0, 3.0), nn.Linear(6, 2))

    loaded = check_agrees(seeded(build), (2, 4))
    ops = set(loaded.graph.op_names())
    assert "relu" in ops and not ops & {"leaky_relu", "hardtanh", "clip"}


def test_float64_models_load_in_float64() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double().eval()
    x = np.random.default_rng(0).standard_normal((1, 3))
    loaded = load_torch(module, x)
    assert loaded.input_type.dtype.value == "float64"
    np.testing.assert_allclose(ir_output(loaded, x), module_output(module, x), rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_random_mlps_agree(widths: list[int], batch: int, seed: int) -> None:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for n_in, n_out in zip([5, *widths], widths):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    module = nn.Sequential(*layers, nn.Linear(widths[-1], 2))
    check_agrees(module, (batch, 5), seed=seed, trials=2)


# --- refusals --------------------------------------------------------------------------------


class WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class TupleOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


class Aliased(nn.Module):
    """`h += 1` changes `a` too in eager mode; torch.fx traces it as an out-of-place add."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        a = h
        h += 1.0
        return a * 2


class SharedInPlace(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        z = y.relu_()
        return y + z


@pytest.mark.parametrize(
    ("module", "shape", "needles"),
    [
        (WithLSTM(), (1, 3, 4), ("LSTM", "rnn", "Supported modules", "Linear")),
        (DataDependent(), (1, 4), ("control flow", "torch.where")),
        (TupleOutput(), (1, 4), ("tuple", "wrap")),
        (Aliased(), (1, 4), ("does not reproduce",)),
        (SharedInPlace(), (1, 4), ("Tensor.relu_", "in place")),
        (nn.Sequential(nn.Linear(4, 5), nn.MaxPool1d(2, ceil_mode=True)), (1, 1, 4), ("ceil_mode",)),
        (nn.Sequential(nn.Linear(4, 4), nn.Dropout(), nn.LPPool1d(2, 2)), (1, 1, 4), ("LPPool1d",)),
        (nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(4)), (1, 1, 9, 9), ("max_pool2d", "kernel", "catalog")),
    ],
    ids=["lstm", "control-flow", "tuple", "aliased", "shared-in-place", "ceil-mode", "lppool", "kernel-domain"],
)
def test_unsupported_models_are_refused_with_a_named_reason(
    module: nn.Module, shape: tuple[int, ...], needles: tuple[str, ...]
) -> None:
    torch.manual_seed(0)
    with pytest.raises(ModelError) as info:
        load_torch(module, np.zeros(shape, np.float32) + 0.5)
    for needle in needles:
        assert needle in str(info.value)


def test_a_train_mode_module_stays_in_train_mode() -> None:
    module = seeded(cnn)
    module.train()
    module[1].eval()  # a frozen BatchNorm inside a training model: its own mode is kept too
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    loaded = load_torch(module, x)
    assert module.training and not module[1].training and module[5].training
    real = loaded.run_real(x)
    assert module.training and not module[1].training and module[5].training
    module.eval()
    np.testing.assert_array_equal(real, module_output(module, x))


def test_run_real_takes_flat_inputs_in_any_float_dtype() -> None:
    module = seeded(mlp).eval()
    x = np.random.default_rng(2).standard_normal((1, 6))
    loaded = load_torch(module, torch.from_numpy(x))
    assert loaded.input_type.dtype.value == "float32"
    np.testing.assert_array_equal(loaded.run_real(x.ravel()), module_output(module, x.astype(np.float32)))
