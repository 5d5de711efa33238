"""Backends with planted bugs for campaign tests: torch eager with one operator wrong for
one attribute value, and torch eager that aborts on one operator in one dtype."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from fuzz.backends.base import Model
from fuzz.backends.torch_eager import TorchEager
from generators.dtypes import DType
from generators.ops.reduce import torch_sum


class _Planted(TorchEager):
    probe_lazily = True  # keep the probe cache of the real torch_eager apart

    def version(self) -> str:
        return "planted-1"


def _sum_off_by_one_when_keepdims(torch: Any, inputs: Any, attrs: Any) -> Any:
    out = torch_sum(torch, inputs, attrs)
    return out + 1 if attrs["keepdims"] else out


class WrongSumKeepdims(_Planted):
    """`sum` with keepdims=True returns one too much (any dtype)."""

    name = "wrong_sum_keepdims"

    def prepare(self, model: Model) -> Any:
        from generators.ops import catalog

        cat = dict(model.catalog or catalog())
        cat["sum"] = replace(cat["sum"], torch=_sum_off_by_one_when_keepdims)
        return super().prepare(replace(model, catalog=cat))


class AbortsOnCosFloat64(_Planted):
    """Kills its process when a graph has `cos` on float64."""

    name = "aborts_on_cos_f64"

    def prepare(self, model: Model) -> Any:
        if any(n.op == "cos" and n.outputs[0].dtype is DType.float64 for n in model.graph.nodes):
            os.abort()
        return super().prepare(model)
