"""RayPool on a real local Ray instance: jobs and their results, crashes classified on the "node"
as locally, a lost actor replaced, slots given up after failed setups, clear errors for bad addresses.

One private Ray instance (3 CPUs) and one pool of 2 actors serve most tests: Ray takes seconds to
start on a small machine. Workers import test targets because Ray puts the driver's working
directory (the repository root under pytest) on their sys.path."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ray = pytest.importorskip("ray")

from fuzz.ray_pool import RayPool, connect  # noqa: E402 - after the importorskip
from fuzz.sandbox import Died, SandboxError, SandboxLimits  # noqa: E402
from generators.errors import GauntletError  # noqa: E402

DISPATCH = "tests.fuzz.ray_targets:dispatch"
LIMITS = SandboxLimits(timeout_s=5.0, memory_mb=256)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    started = connect("local", num_cpus=3)  # 2 for the shared pool, 1 for a test's own pool
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def pool(ray_instance: None) -> Iterator[RayPool]:
    with RayPool(DISPATCH, size=2, limits=LIMITS, address="local") as p:
        yield p


# -- addresses (no Ray instance needed; each must fail in well under a second) ----------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", "cannot reach a Ray cluster at 127.0.0.1:1"),
        ("ray://127.0.0.1:1", "cannot reach a Ray cluster at ray://127.0.0.1:1"),
        ("no-port-here", "bad Ray address 'no-port-here'"),
    ],
)
def test_bad_address_is_a_quick_gauntlet_error(address: str, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(GauntletError, match=message) as info:
        RayPool(DISPATCH, size=1, address=address)
    assert time.monotonic() - start < 6.0
    assert "ray start --head" in str(info.value) or "expected auto" in str(info.value)


def test_auto_follows_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(GauntletError, match=r"127\.0\.0\.1:1 \(from --ray auto\).*ray start --head"):
        connect("auto")


# -- the shared pool ---------------------------------------------------------------------------


def test_jobs_run_on_every_actor_and_results_come_back(pool: RayPool) -> None:
    assert pool.size == 2
    assert pool.run([("echo", i) for i in range(6)]) == list(range(6))
    pids = pool.run([("nap", 0.3), ("nap", 0.3)])
    assert len({pid for pid, _, _ in pids}) == 2  # two actors, each with its own sandbox worker
    assert all(pool.nodes)


def test_segfault_is_classified_and_the_pool_goes_on(pool: RayPool) -> None:
    before = pool.restarts
    died, after = pool.run([("segfault", None), ("echo", "next")])
    assert isinstance(died, Died)
    assert (died.symptom, died.stage) == ("segfault", "run:segfault")
    assert "SIGSEGV" in died.detail and "faulty.py" in died.detail  # the worker's own traceback
    assert after == "next"
    assert pool.restarts == before + 1  # the actor replaced its sandbox worker
    assert pool.run([("echo", 1)]) == [1]


def test_an_exception_in_the_job_is_died_error(pool: RayPool) -> None:
    [died] = pool.run([("raise", 7)])
    assert isinstance(died, Died)
    assert died.symptom == "error" and died.stage == "run:raise"
    assert "ValueError: bad payload 7" in died.detail


def test_run_answers_in_submission_order(pool: RayPool) -> None:
    payloads = [("nap", 0.4), ("echo", "b"), ("nap", 0.0), ("echo", "d"), ("raise", 5)]
    results = pool.run(payloads)
    assert results[1] == "b" and results[3] == "d"
    assert isinstance(results[0], tuple) and isinstance(results[2], tuple)
    assert isinstance(results[4], Died) and results[4].symptom == "error"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.integers(), max_size=12), cut=st.integers(0, 12))
def test_results_yields_every_job_exactly_once(pool: RayPool, values: list[int], cut: int) -> None:
    """As the runner uses it: submit, take a few answers (abandoning the iterator), submit more."""
    first, second = values[:cut], values[cut:]
    expected = {pool.submit(("echo", v)): v for v in first}
    seen: dict[int, object] = {}
    for job, result in pool.results():
        seen[job] = result
        break
    expected.update({pool.submit(("echo", v)): v for v in second})
    for job, result in pool.results():
        assert job not in seen
        seen[job] = result
    assert seen == expected


def test_a_lost_actor_answers_killed_and_is_replaced(pool: RayPool) -> None:
    before = pool.restarts
    node = pool.nodes[0]
    [died] = pool.run([("kill_actor", None)])
    assert isinstance(died, Died)
    assert (died.symptom, died.stage) == ("killed", "ray")
    assert died.detail.startswith(f"the Ray actor running this job died on {node}")
    assert pool.restarts == before + 1
    assert pool.run([("echo", i) for i in range(4)]) == list(range(4))  # meanwhile on the other actor
    deadline = time.monotonic() + 60
    while not all(pool.nodes):  # the replacement is seen to be ready while jobs are waited on
        assert time.monotonic() < deadline, "the replacement actor never became ready"
        assert pool.run([("nap", 0.1)])


def test_a_payload_that_does_not_pickle_is_refused_at_submit(pool: RayPool) -> None:
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pool.submit(("echo", lambda: None))
    assert pool.run([("echo", "still fine")]) == ["still fine"]


def test_closed_pool_refuses_jobs(ray_instance: None) -> None:
    p = RayPool(DISPATCH, size=1, limits=LIMITS, address="local")
    p.close()
    p.close()
    with pytest.raises(SandboxError, match="closed"):
        p.submit(("echo", 1))
    assert ray.is_initialized()  # a pool that reused the connection leaves it alone


# -- pools of their own --------------------------------------------------------------------------


def test_more_workers_than_cluster_cpus_is_a_gauntlet_error(ray_instance: None) -> None:
    with pytest.raises(GauntletError, match="100 workers asked for, but the Ray cluster has 3 CPUs"):
        RayPool(DISPATCH, size=100, address="local")


def test_setup_failure_at_start_raises(ray_instance: None) -> None:
    with pytest.raises(SandboxError, match="setup exploded"):
        RayPool(DISPATCH, size=1, limits=LIMITS, setup="tests.fuzz.faulty:failing_setup", address="local")


def test_slot_given_up_after_replacements_fail_setup(ray_instance: None, tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")  # setup succeeds for the first actor only
    with RayPool(DISPATCH, 1, LIMITS, setup="tests.fuzz.faulty:setup_once", setup_arg=marker, address="local") as p:
        assert p.run([("echo", 1)]) == [1]
        died, never = p.run([("kill_actor", None), ("echo", 2)])
        assert isinstance(died, Died) and died.symptom == "killed"
        # The second job was waiting on the same actor: it died with it.
        assert isinstance(never, Died) and never.stage == "ray"
        [unrun] = p.run([("echo", 3)])
        assert isinstance(unrun, Died) and unrun.symptom == "error"
        assert "no worker could be set up" in unrun.detail and "setup works only once" in unrun.detail
        assert p.restarts == 3  # three replacements tried; the slot is then given up
        assert p.nodes == [""]


_LIFECYCLE = """
    import ray, sys
    from fuzz.ray_pool import RayPool
    with RayPool("shiptarget:where", 1, address="local", ship_code=True) as p:
        [where] = p.run([None])
        assert ray.is_initialized()
    print(where)
    print("initialized after close:", ray.is_initialized())
"""


def test_local_instance_is_owned_and_shipped_code_is_used(tmp_path: Path) -> None:
    """In a fresh process (this one's Ray is shared by the other tests), from a directory outside
    the repository: the pool starts Ray, its workers import the uploaded packages, and close()
    shuts the instance down."""
    (tmp_path / "shiptarget.py").write_text(
        "def where(payload, note, state):\n    import fuzz.sandbox\n    return fuzz.sandbox.__file__\n"
    )
    script = tmp_path / "lifecycle.py"
    script.write_text(textwrap.dedent(_LIFECYCLE))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, state = done.stdout.strip().splitlines()[-2:]
    assert "py_modules_files" in where and not where.startswith(str(REPO))
    assert state == "initialized after close: False"


def test_a_real_worker_describes_its_backends(ray_instance: None) -> None:
    from fuzz.execute import Describe, WorkerConfig

    config = WorkerConfig(("torch_eager",))
    with RayPool(
        "fuzz.execute:target", 1, SandboxLimits(timeout_s=120), setup="fuzz.execute:setup",
        setup_arg=config, address="local",
    ) as p:
        [versions] = p.run([Describe()])
    assert "torch_eager" in versions
