"""Running a user's Python command in this process, as `python script.py ...` or
`python -m module ...` would, while a framework collector records its API calls."""

from __future__ import annotations

import os
import runpy
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from generators.errors import GauntletError
from generators.rules.trace import Trace


class InstrumentError(GauntletError):
    """The instrumented command failed; `traces` holds the calls recorded before it did."""

    def __init__(self, message: str, traces: list[Trace], skips: Counter[str]) -> None:
        super().__init__(message)
        self.traces = traces
        self.skips = skips


def command_target(argv: Sequence[str]) -> tuple[str, bool]:
    """The script path or module name of a command, and whether it is `-m module`."""
    module_mode = bool(argv) and argv[0] == "-m"
    if not argv or (module_mode and len(argv) < 2):
        raise GauntletError("instrument needs a command: script.py [args...] or -m module [args...]")
    target = argv[1] if module_mode else argv[0]
    if not module_mode and not os.path.isfile(target):
        raise GauntletError(f"no such script: {target}")
    return target, module_mode


def run_recorded(argv: Sequence[str], recording: AbstractContextManager[object], traces: list[Trace],
                 skips: Counter[str], describe: Callable[[BaseException], str]) -> None:
    """Run the command inside `recording` (which appends to `traces` and `skips`): sys.argv
    set, the script's folder (or the cwd for -m) importable. SystemExit(0) is success; any
    other failure raises InstrumentError with what was recorded until then."""
    target, module_mode = command_target(argv)
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.path.insert(0, os.getcwd() if module_mode else os.path.dirname(os.path.abspath(target)))
    sys.argv = [target, *argv[(2 if module_mode else 1):]]
    failure: str | None = None
    try:
        with recording:
            if module_mode:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            failure = f"{target} exited with status {exc.code}"
    except Exception as exc:  # noqa: BLE001 - the user's error becomes a user-facing one
        failure = f"{target} raised {describe(exc)}"
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    if failure is not None:
        raise InstrumentError(f"{failure} ({len(traces)} calls recorded before it)", traces, skips)
