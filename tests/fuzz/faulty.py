"""Real faults for the sandbox tests: targets and setups a worker imports by name.

Every target has the sandbox signature target(payload, note, state). `dispatch` runs the fault
named in a (name, arg) payload, so one pool can crash and then answer the next job.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

Note = Callable[[str], None]
_CHUNK = 64 * 2**20


def echo(payload: Any, note: Note, state: Any) -> Any:
    return payload


def pid(payload: Any, note: Note, state: Any) -> int:
    return os.getpid()


def nap(payload: float, note: Note, state: Any) -> tuple[int, float, float]:
    """Sleeps `payload` seconds with heartbeats; returns (pid, start, end) on the monotonic clock."""
    start = time.monotonic()
    while time.monotonic() - start < payload:
        note("nap")
        time.sleep(min(0.05, payload))
    return os.getpid(), start, time.monotonic()


def abort(payload: Any, note: Note, state: Any) -> None:
    note("run:abort")
    os.abort()


def segfault(payload: Any, note: Note, state: Any) -> None:
    note("run:segfault")
    ctypes.string_at(0)  # a real null-pointer read


def hang(payload: Any, note: Note, state: Any) -> None:
    note("run:x")
    while True:
        time.sleep(60)


def allocate(payload: Any, note: Note, state: Any) -> None:
    note("run:allocate")
    chunks = []
    while True:
        chunks.append(bytearray(_CHUNK))


def sigterm(payload: Any, note: Note, state: Any) -> None:
    """Killed by a signal the sandbox does not send itself, before announcing any stage."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)


def exit3(payload: Any, note: Note, state: Any) -> None:
    note("run:exit")
    sys.stdout.flush()
    os._exit(3)


def raise_value_error(payload: Any, note: Note, state: Any) -> None:
    note("run:raise")
    raise ValueError(f"bad payload {payload!r}")


def c_abort(payload: str, note: Note, state: Any) -> None:
    """Writes `payload` to stderr from C (not through Python's sys.stderr), then abort()s in C."""
    note("run:c_abort")
    libc = ctypes.CDLL(None)
    libc.dprintf(2, b"%s\n", payload.encode())
    libc.abort()


def say(payload: str, note: Note, state: Any) -> str:
    """Writes `payload` to stderr and returns it."""
    print(payload, file=sys.stderr)
    return payload


def noisy_exit(payload: int, note: Note, state: Any) -> None:
    """Prints `payload` numbered lines to stderr, then exits 5."""
    note("run:noisy")
    for i in range(payload):
        print(f"line {i}", file=sys.stderr)
    os._exit(5)


def spawn_sleeper(payload: Any, note: Note, state: Any) -> int:
    """Starts a grandchild process that would outlive a careless kill; returns its pid."""
    return subprocess.Popen(["sleep", "600"]).pid


def unpicklable(payload: Any, note: Note, state: Any) -> Any:
    return lambda: None


def get_state(payload: Any, note: Note, state: Any) -> Any:
    return state


def touch_reserved(payload: Any, note: Note, state: mmap.mmap) -> None:
    """Writes into memory mapped at setup (so under the address-space limit) until killed."""
    note("run:touch")
    page = b"x" * mmap.PAGESIZE
    for offset in range(0, len(state), mmap.PAGESIZE):
        state[offset : offset + mmap.PAGESIZE] = page
        if offset % _CHUNK == 0:
            note("run:touch")
    hang(payload, note, state)


def reserve(megabytes: int) -> mmap.mmap:
    """Setup: maps (but does not touch) `megabytes` of anonymous memory."""
    return mmap.mmap(-1, megabytes * 2**20)


def identity_setup(arg: Any) -> Any:
    return arg


def failing_setup(arg: Any) -> None:
    raise RuntimeError("setup exploded")


def crashing_setup(arg: Any) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def hanging_setup(arg: Any) -> None:
    time.sleep(600)


def setup_once(marker: str) -> None:
    """Succeeds in the first worker only: later ones find the marker file and fail."""
    if os.path.exists(marker):
        raise RuntimeError("setup works only once")
    open(marker, "w").close()


def explode_on_load() -> None:
    raise ValueError("this payload cannot be loaded")


class LoadBomb:
    """Pickles fine in the parent; unpickling it (in the worker) raises."""

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return explode_on_load, ()


FAULTS: dict[str, Callable[[Any, Note, Any], Any]] = {
    "echo": echo,
    "pid": pid,
    "nap": nap,
    "abort": abort,
    "segfault": segfault,
    "hang": hang,
    "allocate": allocate,
    "sigterm": sigterm,
    "exit3": exit3,
    "raise": raise_value_error,
    "c_abort": c_abort,
    "say": say,
    "noisy_exit": noisy_exit,
    "spawn_sleeper": spawn_sleeper,
    "unpicklable": unpicklable,
    "get_state": get_state,
    "touch_reserved": touch_reserved,
}


def dispatch(payload: tuple[str, Any], note: Note, state: Any) -> Any:
    name, arg = payload
    return FAULTS[name](arg, note, state)
