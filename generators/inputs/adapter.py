"""One view of a classifier for the hard-input generators and supervisors: a differentiable
torch function from raw inputs (inside declared bounds) to logits, for torch modules, Keras /
TensorFlow models and ONNX files alike. Frameworks other than torch are imported per model kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generators.errors import GauntletError

__all__ = ["AdapterError", "ModelAdapter", "adapt"]

Forward = Callable[[torch.Tensor], torch.Tensor]
OutputSelector = int | str | Callable[[Any], Any] | None


class AdapterError(GauntletError):
    """The model, its declared bounds or preprocessing, or the data given do not fit together."""


@dataclass(frozen=True)
class ModelAdapter:
    """`forward(x)` maps a float32 batch [N, *input_shape] of raw inputs (each value inside
    `bounds`, before preprocessing) to logits [N, classes] and is differentiable in `x`. A model
    that outputs probabilities gets log-probabilities as its logits, so softmax(logits) is the
    model's own output. `features(x)`, where known, is the input of the last linear layer
    [N, F] (for feature-space supervisors); `dropout_forward(x)`, where the model has dropout,
    is `forward` with dropout active (MC dropout)."""

    forward: Forward
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    num_classes: int
    description: str
    features: Forward | None = None
    dropout_forward: Forward | None = None

    def _batched(self, fn: Forward, x: np.ndarray, batch: int) -> np.ndarray:
        x = self.as_batch(x)
        parts = []
        with torch.no_grad():
            for start in range(0, len(x), batch):
                parts.append(fn(torch.from_numpy(x[start : start + batch])).detach().cpu().double().numpy())
        if not parts:
            return np.zeros((0, self.num_classes))
        return np.concatenate(parts)

    def as_batch(self, x: np.ndarray) -> np.ndarray:
        """`x` as a float32 batch [N, *input_shape]; one unbatched sample becomes N = 1."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape == self.input_shape:
            x = x[None]
        if x.shape[1:] != self.input_shape:
            raise AdapterError(f"inputs have shape {x.shape[1:]} per sample; the model takes {self.input_shape}")
        return np.ascontiguousarray(x)

    def labelled_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(`x` as a float32 batch clipped to the bounds, `y` as int64 labels), or an
        AdapterError when counts, label range or input values do not fit the model."""
        batch = self.as_batch(x)
        labels = np.asarray(y).reshape(-1)
        if len(labels) != len(batch):
            raise AdapterError(f"{len(batch)} samples but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise AdapterError(f"labels span {labels.min()}..{labels.max()}; the model has {self.num_classes} classes")
        low, high = self.bounds
        if len(batch) and (batch.min() < low - 1e-6 or batch.max() > high + 1e-6):
            raise AdapterError(
                f"inputs span [{batch.min():.4g}, {batch.max():.4g}], outside the model's bounds [{low:.4g}, {high:.4g}]"
            )
        return np.clip(batch, low, high).astype(np.float32), labels.astype(np.int64)

    def logits(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        return self._batched(self.forward, x, batch)

    def probabilities(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        logits = self.logits(x, batch)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        return np.asarray(self.logits(x, batch).argmax(axis=1))

    def feature_values(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        if self.features is None:
            raise AdapterError(f"{self.description}: no feature layer is known (no linear layer found)")
        return self._batched(self.features, x, batch)

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.bounds[0], self.bounds[1])

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        labels = np.asarray(y).reshape(-1)
        return float((self.predict(x) == labels).mean()) if len(labels) else float("nan")

    def check(self, x: np.ndarray, y: np.ndarray, minimum: float | None = None) -> float:
        """Clean accuracy on the user's data, raising `AdapterError` with what looks wrong when
        the data lie outside the declared bounds or accuracy is too low (default: below half
        way between chance and 1), which usually means wrong preprocessing or bounds."""
        x = self.as_batch(x)
        labels = np.asarray(y).reshape(-1)
        if len(labels) != len(x):
            raise AdapterError(f"{len(x)} samples but {len(labels)} labels")
        if len(x) == 0:
            raise AdapterError("no samples to check the model on")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise AdapterError(f"labels span {labels.min()}..{labels.max()}; the model has {self.num_classes} classes")
        low, high = self.bounds
        data_low, data_high = float(x.min()), float(x.max())
        if data_low < low - 1e-6 or data_high > high + 1e-6:
            raise AdapterError(
                f"the data span [{data_low:.4g}, {data_high:.4g}] but the declared input bounds are "
                f"[{low:.4g}, {high:.4g}]; declare the bounds of the raw inputs and put any scaling in "
                "the preprocessing"
            )
        accuracy = self.accuracy(x, labels)
        chance = 1.0 / self.num_classes
        threshold = (chance + 1.0) / 2 if minimum is None else minimum
        if accuracy < threshold:
            hint = ""
            if high - low > 2 and data_high - data_low <= 1.0 + 1e-6:
                hint = "; the data look scaled to [0, 1] while the bounds are wider"
            elif high - low <= 1.0 + 1e-6 and data_high - data_low < 0.1:
                hint = "; the data barely vary inside the bounds"
            raise AdapterError(
                f"{self.description}: clean accuracy {accuracy:.1%} on {len(x)} samples is below "
                f"{threshold:.1%} (chance {chance:.1%}): check the preprocessing, the input bounds and "
                f"the output selection (logits or probabilities){hint}"
            )
        return accuracy


# --- building adapters ------------------------------------------------------------------------


def adapt(
    model: Any,
    input_shape: Sequence[int],
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    preprocess: Forward | None = None,
    output: OutputSelector = None,
    probabilities: bool = False,
    feature_layer: str | None = None,
    description: str = "",
) -> ModelAdapter:
    """An adapter for a `torch.nn.Module`, a Keras / TensorFlow model or an ONNX file path.
    `input_shape` is one sample's shape (no batch dimension); `preprocess` maps raw torch inputs
    to what the model takes (e.g. normalization) and runs inside the differentiable path;
    `output` picks the logits from a tuple (index) or dict (key) output, or is a callable;
    `probabilities=True` says the selected output is already a probability vector;
    `feature_layer` names the module / layer whose input feeds feature supervisors."""
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        raise AdapterError(f"input shape {shape} must be non-empty with positive dimensions")
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise AdapterError(f"input bounds [{low}, {high}] are empty")
    kind, builder = _builder(model)
    forward, features, dropout = builder(model, feature_layer, output)
    if kind.startswith("Keras"):
        output = None  # selected on the TensorFlow side already
    name = description or kind

    def chain(fn: Forward | None, select: bool) -> Forward | None:
        if fn is None:
            return None
        inner: Forward = fn

        def run(x: torch.Tensor) -> torch.Tensor:
            value = inner(preprocess(x) if preprocess is not None else x)
            return _to_logits(_select(value, output), probabilities) if select else value

        return run

    logits = chain(forward, True)
    assert logits is not None
    probe = torch.zeros((2, *shape), dtype=torch.float32) + (low + high) / 2
    try:
        with torch.no_grad():
            out = logits(probe)
    except AdapterError:
        raise
    except Exception as error:  # a user model failing on its declared shape is a user mistake
        raise AdapterError(f"{name} fails on a batch of shape {tuple(probe.shape)}: {error}") from error
    if out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 2:
        raise AdapterError(f"{name} returns shape {tuple(out.shape)} for 2 samples; a classifier must return [N, classes >= 2]")
    return ModelAdapter(
        forward=logits,
        input_shape=shape,
        bounds=(low, high),
        num_classes=int(out.shape[1]),
        description=name,
        features=chain(features, False),
        dropout_forward=chain(dropout, True),
    )


Built = tuple[Forward, Forward | None, Forward | None]


def _builder(model: Any) -> tuple[str, Callable[[Any, str | None, OutputSelector], Built]]:
    if isinstance(model, torch.nn.Module):
        return "torch module " + type(model).__name__, _torch_module
    if isinstance(model, str | Path):
        path = Path(model)
        if path.suffix.lower() != ".onnx":
            raise AdapterError(f"{path}: only ONNX files can be adapted from a path")
        return f"ONNX model {path.name}", _onnx_model
    module = type(model).__module__
    if module.startswith(("keras", "tensorflow", "tf_keras")):
        return "Keras model " + type(model).__name__, _keras_model
    raise AdapterError(
        f"cannot adapt a {type(model).__module__}.{type(model).__name__}: give a torch.nn.Module, "
        "a Keras / TensorFlow model, or the path of an ONNX file"
    )


def _select(value: Any, output: OutputSelector) -> torch.Tensor:
    if callable(output):
        value = output(value)
    elif output is not None:
        try:
            value = value[output]
        except (KeyError, IndexError, TypeError) as error:
            raise AdapterError(f"cannot select output {output!r} from a {type(value).__name__}: {error}") from error
    elif isinstance(value, dict):
        if "logits" not in value:
            raise AdapterError(f"the model returns a dict with keys {sorted(value)}; say which holds the logits (output=...)")
        value = value["logits"]
    elif isinstance(value, list | tuple):
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise AdapterError(f"the selected output is a {type(value).__name__}, not a tensor")
    return value.reshape(value.shape[0], -1) if value.ndim > 2 else value


def _to_logits(value: torch.Tensor, probabilities: bool) -> torch.Tensor:
    value = value.float()
    # log keeps softmax(logits) equal to the model's probabilities; the floor keeps it finite.
    return torch.log(value.clamp_min(1e-30)) if probabilities else value


@contextlib.contextmanager
def _mode(module: torch.nn.Module, dropout_on: bool) -> Iterator[None]:
    """Eval mode for the duration (and dropout layers in train mode for MC dropout); restores
    every submodule's own mode afterwards."""
    saved = [(m, m.training) for m in module.modules()]
    module.eval()
    if dropout_on:
        for m in module.modules():
            if isinstance(m, torch.nn.modules.dropout._DropoutNd):
                m.train()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


def _torch_module(module: torch.nn.Module, feature_layer: str | None, output: OutputSelector) -> Built:
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32

    def run(x: torch.Tensor, dropout_on: bool = False) -> Any:
        with _mode(module, dropout_on):
            return module(x.to(device=device, dtype=dtype))

    named = dict(module.named_modules())
    if feature_layer is not None:
        if feature_layer not in named:
            raise AdapterError(f"no module named {feature_layer!r}; modules: {', '.join(n for n in named if n)}")
        tap = named[feature_layer]
    else:
        linear = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
        tap = linear[-1] if linear else None

    features: Forward | None = None
    if tap is not None:
        chosen = tap

        def features(x: torch.Tensor) -> torch.Tensor:
            seen: list[torch.Tensor] = []
            handle = chosen.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
            try:
                run(x)
            finally:
                handle.remove()
            return seen[-1].reshape(x.shape[0], -1).float()

    has_dropout = any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in module.modules())
    dropout: Forward | None = (lambda x: run(x, True)) if has_dropout else None
    return run, features, dropout


def _onnx_model(path: str | Path, feature_layer: str | None, output: OutputSelector) -> Built:
    """Through the graph IR, so gradients exist (onnxruntime has none)."""
    from generators.load.onnx import load_onnx
    from generators.materialize.torch import to_torch

    if feature_layer is not None:
        raise AdapterError("feature_layer is not supported for ONNX models")
    try:
        loaded = load_onnx(path)
    except GauntletError as error:
        raise AdapterError(str(error)) from error
    module = to_torch(loaded.graph, loaded.weights)
    in_shape = loaded.input_type.shape
    in_dtype = loaded.input_type.dtype

    def run(x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        dtype = in_dtype.torch(torch)
        # the loaded graph has a fixed batch; run sample by sample when it differs.
        if in_shape[0] == batch and x[0].numel() * batch == int(np.prod(in_shape)):
            whole: torch.Tensor = module(x.reshape(in_shape).to(dtype))[0]
            return whole.reshape(batch, -1)
        rows = [module(x[i : i + 1].reshape(in_shape).to(dtype))[0] for i in range(batch)]
        return torch.cat([r.reshape(1, -1) for r in rows])

    return run, None, None


def _keras_model(model: Any, feature_layer: str | None, output: OutputSelector) -> Built:
    """A torch autograd function around the Keras model; gradients come from a GradientTape."""
    import tensorflow as tf

    def bridge(net: Any, training: bool, select: bool = True) -> Forward:
        def pick(out: Any) -> Any:
            return _keras_select(out, output) if select else out

        class _Bridge(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
                ctx.save_for_backward(x)
                out = net(tf.constant(x.detach().cpu().numpy()), training=training)
                return torch.from_numpy(np.array(pick(out), dtype=np.float32))

            @staticmethod
            def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
                (x,) = ctx.saved_tensors
                xt = tf.constant(x.detach().cpu().numpy())
                with tf.GradientTape() as tape:
                    tape.watch(xt)
                    out = pick(net(xt, training=training))
                g = tape.gradient(out, xt, output_gradients=tf.constant(grad.cpu().numpy()))
                return torch.from_numpy(np.array(g, dtype=np.float32)).to(grad.device)

        def apply(x: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = _Bridge.apply(x.float())  # type: ignore[no-untyped-call]
            return result

        return apply

    layers = list(getattr(model, "layers", []))
    if feature_layer is not None:
        chosen = [layer for layer in layers if layer.name == feature_layer]
        if not chosen:
            raise AdapterError(f"no layer named {feature_layer!r}; layers: {', '.join(layer.name for layer in layers)}")
        tap = chosen[0]
    else:
        dense = [layer for layer in layers if type(layer).__name__ == "Dense"]
        tap = dense[-1] if dense else None
    features: Forward | None = None
    if tap is not None:
        try:
            import keras

            extractor = keras.Model(inputs=model.inputs, outputs=tap.input)
            features = bridge(extractor, False, select=False)
        except (AttributeError, ValueError, TypeError):
            features = None  # subclassed models have no symbolic graph to cut
    has_dropout = any("Dropout" in type(layer).__name__ for layer in layers)
    return bridge(model, False), features, (bridge(model, True) if has_dropout else None)


def _keras_select(out: Any, output: OutputSelector) -> Any:
    if callable(output):
        return output(out)
    if output is not None:
        return out[output]
    if isinstance(out, dict):
        return out["logits"] if "logits" in out else next(iter(out.values()))
    if isinstance(out, list | tuple):
        return out[0]
    return out
