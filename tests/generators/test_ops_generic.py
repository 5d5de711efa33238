"""Generic tests every operator gets automatically: spec consistency, validation of its
instances, and both framework lowerings against the NumPy reference for every dtype."""

from __future__ import annotations

import inspect

import pytest

from generators.ir import validate
from generators.ops import catalog
from generators.spec import Call, Missing
from tests.generators.op_cases import assert_matches, cases

OPS = sorted(catalog())


@pytest.mark.parametrize("name", OPS)
def test_spec_is_consistent(name: str) -> None:
    spec = catalog()[name]
    assert spec.dtypes, "an operator needs at least one dtype"
    assert spec.operands, "an operator needs at least one operand"
    assert not (spec.dtypes & set(spec.excluded_dtypes)), "a dtype cannot be both allowed and excluded"
    for fw in ("torch", "tensorflow", "numpy"):
        lowering = spec.lowering(fw)
        if isinstance(lowering, (Call, Missing)):
            continue
        # Reproducer scripts copy lowering sources: they must be plain module-level defs.
        assert inspect.isfunction(lowering) and lowering.__qualname__ == lowering.__name__, (
            f"{fw} lowering of {name} must be a module-level def or a Call"
        )
        assert lowering.__name__ != "<lambda>"


@pytest.mark.parametrize("name", OPS)
def test_instances_validate(name: str) -> None:
    for case in cases(catalog()[name], seed=1, per_dtype=2):
        validate(case.graph)


@pytest.mark.parametrize("name", OPS)
def test_torch_matches_reference(name: str) -> None:
    spec = catalog()[name]
    if isinstance(spec.torch, Missing):
        pytest.skip(spec.torch.reason)
    from generators.materialize import torch as mt

    for case in cases(spec, seed=2):
        module = mt.to_torch(case.graph, case.feed.weights(case.graph))
        assert_matches(case, mt.run(module, case.feed.inputs(case.graph)), "torch")


@pytest.mark.parametrize("name", OPS)
def test_tensorflow_matches_reference(name: str) -> None:
    spec = catalog()[name]
    if isinstance(spec.tf, Missing):
        pytest.skip(spec.tf.reason)
    from generators.materialize import tensorflow as mtf

    for case in cases(spec, seed=3):
        module = mtf.to_tensorflow(case.graph, case.feed.weights(case.graph))
        assert_matches(case, mtf.run(module, case.feed.inputs(case.graph)), "tensorflow")
