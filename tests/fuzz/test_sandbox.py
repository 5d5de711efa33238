"""The sandbox against real faults (segfault, abort, hang, OOM, exit, exceptions): each is classified
with its stage and detail, the worker is replaced, and the pool goes on answering."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.sandbox import Died, SandboxError, SandboxLimits, WorkerPool
from tests.fuzz.faulty import LoadBomb

DISPATCH = "tests.fuzz.faulty:dispatch"
LIMITS = SandboxLimits(timeout_s=1.0, memory_mb=256)


def _alive(pid: int) -> bool:
    """True if `pid` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _all_gone(pids: set[int], within_s: float = 3.0) -> bool:
    """True once none of `pids` runs; SIGKILL to a process group is delivered asynchronously."""
    deadline = time.monotonic() + within_s
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(DISPATCH, size=1, limits=LIMITS) as p:
        yield p


FAULTS = [
    # (fault, arg, symptom, stage, text the detail must contain)
    ("abort", None, "abort", "run:abort", "SIGABRT"),
    ("segfault", None, "segfault", "run:segfault", "SIGSEGV"),
    ("hang", None, "hang", "run:x", "no progress for 1.0 s"),
    ("allocate", None, "oom", "run:allocate", "MemoryError"),
    ("exit3", None, "exit", "run:exit", "exit code 3"),
    ("sigterm", None, "killed", "", "SIGTERM"),
    ("raise", 7, "error", "run:raise", "ValueError: bad payload 7"),
    ("c_abort", "fatal: backend exploded", "abort", "run:c_abort", "fatal: backend exploded"),
    (
        "c_abort",
        "terminate called after throwing an instance of 'std::bad_alloc'",
        "oom",
        "run:c_abort",
        "std::bad_alloc",
    ),
]


@pytest.mark.parametrize(
    ("fault", "arg", "symptom", "stage", "text"), FAULTS, ids=[f[0] + "-" + f[2] for f in FAULTS]
)
def test_fault_is_classified_and_the_next_job_runs(
    pool: WorkerPool, fault: str, arg: Any, symptom: str, stage: str, text: str
) -> None:
    died, after = pool.run([(fault, arg), ("echo", [1, "two"])])
    assert isinstance(died, Died)
    assert (died.symptom, died.stage) == (symptom, stage), died.detail
    assert text in died.detail
    assert after == [1, "two"]
    assert pool.restarts == (0 if symptom == "error" else 1)


def test_detail_names_the_signal_first_and_carries_the_crash_log(pool: WorkerPool) -> None:
    (died,) = pool.run([("segfault", None)])
    assert died.detail.splitlines()[0] == "SIGSEGV"
    assert "Fatal Python error: Segmentation fault" in died.detail  # faulthandler, via the log
    assert "faulty.py" in died.detail


def test_error_detail_is_the_traceback(pool: WorkerPool) -> None:
    (died,) = pool.run([("raise", "x")])
    lines = died.detail.splitlines()
    assert lines[0] == "ValueError: bad payload 'x'"
    assert "Traceback (most recent call last):" in died.detail
    assert "raise_value_error" in died.detail


def test_detail_has_only_the_last_lines_of_this_job(pool: WorkerPool) -> None:
    said, died = pool.run([("say", "from an earlier job"), ("noisy_exit", 30)])
    assert said == "from an earlier job"
    assert died.symptom == "exit"
    assert "line 29" in died.detail and "line 10" in died.detail
    assert "line 9\n" not in died.detail + "\n"
    assert "earlier job" not in died.detail


def test_rss_over_budget_is_oom_even_below_the_address_space_limit() -> None:
    # Memory mapped during setup is under the RLIMIT_AS cap; only the parent's RSS watch sees it.
    limits = SandboxLimits(timeout_s=2.0, memory_mb=128)
    with WorkerPool(DISPATCH, 1, limits, setup="tests.fuzz.faulty:reserve", setup_arg=1024) as p:
        died, after = p.run([("touch_reserved", None), ("echo", 5)])
        assert isinstance(died, Died)
        assert (died.symptom, died.stage) == ("oom", "run:touch"), died.detail
        assert died.detail.startswith("RSS ") and " > " in died.detail
        assert after == 5


def test_queued_jobs_continue_after_deaths_and_are_not_retried(pool: WorkerPool) -> None:
    out = pool.run([("segfault", None), ("echo", 1), ("exit3", None), ("abort", None), ("echo", 2)])
    assert [o.symptom if isinstance(o, Died) else o for o in out] == ["segfault", 1, "exit", "abort", 2]
    assert pool.restarts == 3


def test_two_workers_run_concurrently() -> None:
    with WorkerPool(DISPATCH, size=2, limits=LIMITS) as p:
        (pid_a, start_a, end_a), (pid_b, start_b, end_b) = p.run([("nap", 0.6), ("nap", 0.6)])
    assert pid_a != pid_b
    assert start_a < end_b and start_b < end_a  # the two naps overlapped


def test_results_yields_every_job_once_including_ones_submitted_while_iterating() -> None:
    with WorkerPool(DISPATCH, size=2, limits=LIMITS) as p:
        first = [p.submit(("echo", i)) for i in range(3)]
        assert first == [0, 1, 2]
        seen: dict[int, Any] = {}
        for job, result in p.results():
            seen[job] = result
            if job == 0:
                p.submit(("raise", 0))
        assert list(p.results()) == []
    assert set(seen) == {0, 1, 2, 3}
    assert [seen[i] for i in range(3)] == [0, 1, 2]
    assert isinstance(seen[3], Died) and seen[3].symptom == "error"


def test_run_leaves_other_jobs_to_results(pool: WorkerPool) -> None:
    early = pool.submit(("echo", "early"))
    assert pool.run([("echo", "a"), ("echo", "b")]) == ["a", "b"]
    assert list(pool.results()) == [(early, "early")]


@pytest.fixture(scope="module")
def pair() -> Iterator[WorkerPool]:
    with WorkerPool(DISPATCH, size=2, limits=LIMITS) as p:
        yield p


jobs = st.one_of(
    st.tuples(st.just("echo"), st.integers()),
    st.tuples(st.just("raise"), st.integers(0, 9)),
    st.tuples(st.just("nap"), st.sampled_from([0.0, 0.01, 0.03])),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(jobs, max_size=8))
def test_run_keeps_order(pair: WorkerPool, payloads: list[tuple[str, Any]]) -> None:
    out = pair.run(payloads)
    assert len(out) == len(payloads)
    for (kind, arg), result in zip(payloads, out):
        if kind == "echo":
            assert result == arg
        elif kind == "raise":
            assert isinstance(result, Died) and f"bad payload {arg}" in result.detail
        else:
            assert isinstance(result, tuple) and len(result) == 3
    assert pair.restarts == 0


def test_setup_result_is_the_state_of_every_call() -> None:
    with WorkerPool(DISPATCH, 2, LIMITS, setup="tests.fuzz.faulty:identity_setup", setup_arg={"k": 1}) as p:
        assert p.run([("get_state", None)] * 3) == [{"k": 1}] * 3


def test_unlimited_memory() -> None:
    with WorkerPool(DISPATCH, 1, SandboxLimits(timeout_s=1.0, memory_mb=None)) as p:
        assert p.run([("echo", 1)]) == [1]


@pytest.mark.parametrize(
    ("setup", "text"),
    [
        ("tests.fuzz.faulty:failing_setup", "RuntimeError: setup exploded"),
        ("tests.fuzz.faulty:crashing_setup", "SIGSEGV"),
        ("tests.fuzz.no_such_module:setup", "ModuleNotFoundError"),
    ],
)
def test_failed_setup_raises_and_leaves_nothing_running(setup: str, text: str) -> None:
    before = set(multiprocessing.active_children())
    with pytest.raises(SandboxError, match="setup failed") as info:
        WorkerPool(DISPATCH, 2, LIMITS, setup=setup)
    assert text in str(info.value)
    assert set(multiprocessing.active_children()) <= before


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SandboxError):
        WorkerPool(DISPATCH, 0)
    with pytest.raises(SandboxError):
        WorkerPool("no_colon", 1)
    with pytest.raises(SandboxError):
        WorkerPool(DISPATCH, 1, SandboxLimits(timeout_s=0))


def test_unpicklable_result_is_an_error_and_unpicklable_payload_is_refused(pool: WorkerPool) -> None:
    (died,) = pool.run([("unpicklable", None)])
    assert isinstance(died, Died) and died.symptom == "error"
    assert "could not be pickled" in died.detail
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pool.submit(("echo", lambda: None))
    assert pool.run([("echo", 3)]) == [3]
    assert pool.restarts == 0


def test_close_is_idempotent_and_kills_workers_and_their_children() -> None:
    before = set(multiprocessing.active_children())
    p = WorkerPool(DISPATCH, size=2, limits=LIMITS)
    pids = set(p.run([("pid", None)] * 4))
    (grandchild,) = p.run([("spawn_sleeper", None)])
    busy = p.submit(("hang", None))
    tmpdir = p._tmpdir
    assert os.path.isdir(tmpdir)
    p.close()
    p.close()
    assert _all_gone(pids | {grandchild})
    assert set(multiprocessing.active_children()) <= before
    assert not os.path.exists(tmpdir)
    with pytest.raises(SandboxError):
        p.submit(("echo", 1))
    with pytest.raises(SandboxError, match="unanswered"):
        list(p.results())
    assert busy == 5


def test_hang_kills_the_jobs_own_children() -> None:
    with WorkerPool(DISPATCH, 1, LIMITS) as p:
        # What a job starts stays in the worker's process group, which the hang kill takes down.
        (grandchild,) = p.run([("spawn_sleeper", None)])
        assert _alive(grandchild)
        (died,) = p.run([("hang", None)])
        assert died.symptom == "hang"
        assert _all_gone({grandchild})


def test_a_payload_the_worker_cannot_load_is_an_error(pool: WorkerPool) -> None:
    died, after = pool.run([("echo", LoadBomb()), ("echo", 1)])
    assert isinstance(died, Died) and died.symptom == "error"
    assert died.detail.startswith("ValueError: this payload cannot be loaded")
    assert after == 1


def test_replacements_whose_setup_fails_are_given_up_without_looping(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    with WorkerPool(DISPATCH, 1, LIMITS, setup="tests.fuzz.faulty:setup_once", setup_arg=marker) as p:
        crashed, orphan = p.run([("segfault", None), ("echo", 1)])
        assert crashed.symptom == "segfault"
        assert isinstance(orphan, Died) and orphan.symptom == "error"
        assert "no worker could be set up" in orphan.detail and "setup works only once" in orphan.detail
        assert p.restarts == 3
        assert isinstance(p.run([("echo", 2)])[0], Died)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "main.py"
    path.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        "from fuzz.sandbox import SandboxLimits, WorkerPool\n"
        "if __name__ == '__main__':\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return path


def _private_tmpdir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A TMPDIR for a child interpreter, so the test can see what its pool leaves behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp, {**os.environ, "TMPDIR": str(tmp)}


def test_interpreter_exit_without_close_kills_the_workers(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        p = WorkerPool("tests.fuzz.faulty:dispatch", 2, SandboxLimits(timeout_s=60.0, memory_mb=256))
        print(*set(p.run([("pid", None)] * 4)), flush=True)
        p.submit(("hang", None))
        p.submit(("hang", None))
        """,
    )
    tmp, env = _private_tmpdir(tmp_path)
    start = time.monotonic()
    command = [sys.executable, str(script)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True, env=env)
    assert time.monotonic() - start < 20
    assert _all_gone({int(pid) for pid in out.stdout.split()})
    assert list(tmp.iterdir()) == []


def test_a_killed_parent_takes_its_busy_workers_along(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        p = WorkerPool("tests.fuzz.faulty:dispatch", 1, SandboxLimits(timeout_s=60.0, memory_mb=256))
        print(*p.run([("pid", None)]), flush=True)
        p.submit(("hang", None))
        p.run([("pid", None)])  # queued behind the hang: the parent waits here
        """,
    )
    tmp, env = _private_tmpdir(tmp_path)
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    ) as parent:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        time.sleep(0.3)  # let the hang start
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    assert _all_gone({worker}, within_s=5.0)
    assert list(tmp.iterdir()) == []  # the orphaned worker removed its log and the pool's dir


def test_a_hanging_setup_is_a_setup_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fuzz.sandbox._SETUP_TIMEOUT_S", 0.5)
    limits = SandboxLimits(timeout_s=0.5, memory_mb=256)
    with pytest.raises(SandboxError, match="setup took longer than 0.5 s"):
        WorkerPool(DISPATCH, 1, limits, setup="tests.fuzz.faulty:hanging_setup")


def test_a_worker_killed_while_idle_is_replaced(pool: WorkerPool) -> None:
    (pid,) = pool.run([("pid", None)])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    (new_pid,) = pool.run([("pid", None)])
    assert new_pid != pid
    assert pool.restarts == 1
