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


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("name", OPS)
def test_standalone_script_matches_materializer(name: str, framework: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The reproducer script (copied lowering source, no Gauntlet import) computes exactly
    what the materialized model computes."""
    import runpy

    import numpy as np

    from generators.materialize.script import npy_array, write_script

    spec = catalog()[name]
    if isinstance(spec.lowering(framework), Missing):
        pytest.skip("no lowering")
    if framework == "torch":
        from generators.materialize import torch as mat

        def run_model(case):  # type: ignore[no-untyped-def]
            return mat.run(mat.to_torch(case.graph, case.feed.weights(case.graph)), case.feed.inputs(case.graph))
    else:
        from generators.materialize import tensorflow as mat  # type: ignore[no-redef]

        def run_model(case):  # type: ignore[no-untyped-def]
            return mat.run(mat.to_tensorflow(case.graph, case.feed.weights(case.graph)), case.feed.inputs(case.graph))

    for k, case in enumerate(cases(spec, seed=4, per_dtype=1)):
        files = {}
        for i, array in enumerate(case.feed.arrays):
            files[i] = f"c{k}_p{i}.npy"
            np.save(tmp_path / files[i], npy_array(array), allow_pickle=False)
        script = tmp_path / f"c{k}.py"
        script.write_text(write_script(case.graph, framework, catalog(), files))  # type: ignore[arg-type]
        ns = runpy.run_path(str(script))
        args = [ns["to_tensor"](ns["load"](files[i]), p.type.dtype.value) for i, p in enumerate(case.graph.placeholders)]
        got = [mat.to_numpy(t) for t in ns["model"](*args)]
        want = run_model(case)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w, err_msg=f"{framework} script of {case.label()}")


def test_lowering_helper_names_are_unique() -> None:
    """Scripts put every copied helper in one namespace, so two different helpers may not
    share a name."""
    from generators.materialize.script import function_sources

    seen: dict[str, str] = {}
    for spec in catalog().values():
        for fw in ("torch", "tensorflow"):
            lowering = spec.lowering(fw)
            if isinstance(lowering, (Call, Missing)):
                continue
            for fname, src in function_sources(lowering).items():
                assert seen.setdefault(fname, src) == src, f"two different helpers named {fname}"


@pytest.mark.parametrize("name", OPS)
def test_solver_path_instances_validate(name: str) -> None:
    """Instances found by z3 alone (no concrete sampling) satisfy the spec too."""
    import numpy as np

    from generators.dtypes import ordered
    from generators.graph_gen import single_node_graph
    from generators.instantiate import Instantiator, Limits

    spec = catalog()[name]
    inst = Instantiator(Limits(max_dim=6, max_elements=512), fast_tries=0)
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(20):
        dtype = ordered(spec.dtypes)[int(rng.integers(len(spec.dtypes)))]
        instance = inst.instantiate(spec, rng, [None] * spec.arity_range()[0], dtype)
        if instance is not None:
            validate(single_node_graph(instance))
            found += 1
    assert found >= 5, f"z3 found only {found}/20 instances"


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize("name", OPS)
def test_constraints_reject_what_frameworks_reject(name: str, framework: str) -> None:
    """On near-miss instances: whenever the framework raises, the spec rejects too; whenever
    the spec accepts, the framework runs and returns the inferred shapes."""
    import numpy as np

    from generators.ir import TensorType
    from generators.reference import as_tuple
    from generators.values import sample_array
    from tests.generators.op_cases import unconstrained_instances

    spec = catalog()[name]
    lowering = spec.lowering(framework)
    if isinstance(lowering, Missing):
        pytest.skip("no lowering")
    if framework == "torch":
        import torch as fw

        from generators.materialize.torch import to_tensor
    else:
        import tensorflow as fw  # type: ignore[no-redef]

        from generators.materialize.tensorflow import to_tensor  # type: ignore[assignment]
    rng = np.random.default_rng(6)
    accepted = 0
    for raw in unconstrained_instances(spec, seed=7, count=40):
        tensors = [
            to_tensor(sample_array(rng, TensorType(s, spec.operand_dtype(j, raw.dtype)), spec.operand_at(j).values))
            for j, s in enumerate(raw.shapes)
        ]
        try:
            outputs = as_tuple(lowering(fw, tensors, raw.attrs))
        except Exception as exc:  # noqa: BLE001 - any framework rejection counts
            assert not raw.accepted, (
                f"{framework} rejects {raw.shapes} {raw.attrs} ({raw.dtype.value}) but the spec accepts it: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            )
            continue
        if raw.accepted:
            accepted += 1
            inferred = [tuple(s) for s in spec.infer(raw.shapes, raw.attrs)]
            assert [tuple(o.shape) for o in outputs] == inferred, f"{raw.shapes} {raw.attrs}"
