"""Targets for the Ray pool tests: tests.fuzz.faulty's faults plus one only an actor has (its
process dies under the job, as when a node is lost)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from tests.fuzz.faulty import Note
from tests.fuzz.faulty import dispatch as faulty_dispatch


def kill_actor(payload: Any, note: Note, state: Any) -> None:
    """SIGKILLs the sandbox worker's parent, which is the Ray actor process."""
    note("run:kill_actor")
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(60)  # the sandbox worker notices its orphaning and exits within a second


def dispatch(payload: tuple[str, Any], note: Note, state: Any) -> Any:
    if payload[0] == "kill_actor":
        return kill_actor(payload[1], note, state)
    return faulty_dispatch(payload, note, state)
