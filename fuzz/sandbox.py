"""Persistent worker processes that run jobs and outlive them: segfaults, aborts, hangs and memory
blow-ups become `Died` values, the worker is replaced and the parent carries on.
Stdlib only: imports nothing from Gauntlet, so a worker starts fast."""

from __future__ import annotations

import atexit
import faulthandler
import importlib
import multiprocessing
import os
import pickle
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["Died", "SandboxError", "SandboxLimits", "WorkerPool"]

_POLL_S = 0.05  # how often the parent wakes to check hang deadlines and RSS
_SETUP_TIMEOUT_S = 300.0  # setup (importing frameworks) gets at least this long before it is a hang
_SETUP_ATTEMPTS = 3  # consecutive setup failures after which a slot is given up
_TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024
_LOG_MAX = 16 * 2**20  # a worker's log is emptied between jobs once it is this large
_DRAIN_MAX = 1000  # messages read from one worker per step, so a chatty worker cannot starve others
_OOM_EXIT = 97  # a worker that hit MemoryError and could not even report it exits with this code
_OOM_MARKERS = ("bad_alloc", "out of memory", "cannot allocate memory", "can't allocate memory")
# Exceptions frameworks raise when an allocation fails (torch.OutOfMemoryError, tf's
# ResourceExhaustedError): named here because their modules are never imported by the sandbox.
_OOM_EXCEPTIONS = ("OutOfMemoryError", "ResourceExhaustedError")
_EARLY_DEATH_HINT = (
    "\nThe worker died before it could run setup, so its stderr went to the parent's. A common cause:"
    ' the main script starts a pool without an `if __name__ == "__main__":` guard (spawn re-imports it).'
)
_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)
_MIB = 2**20


class SandboxError(Exception):
    """The pool cannot do what was asked: bad arguments, setup failed, or it is closed."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 60.0  # a job that sends no progress note for this long is a hang
    memory_mb: int | None = 4096  # per-worker memory budget beyond what setup used; None = unlimited


@dataclass(frozen=True)
class Died:
    """A job whose worker did not return normally, classified."""

    symptom: str  # "segfault" | "abort" | "hang" | "oom" | "killed" | "exit" | "error"
    stage: str  # the last stage the job announced with note(), "" if none
    detail: str  # one summary line, then the traceback and/or the tail of the worker's output


# ---------------------------------------------------------------------------------------------
# Worker side


def _resolve(spec: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:function', got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def _status_bytes(pid: int | str, field: str) -> int | None:
    """A `kB` field (VmRSS, VmSize) of /proc/<pid>/status in bytes; None where unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _limit_address_space(memory_mb: int) -> None:
    vm = _status_bytes("self", "VmSize")
    if vm is None:
        return
    soft = vm + memory_mb * _MIB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _orphaned(log_path: str) -> None:
    """The parent is gone without cleaning up: remove our log, and the pool's dir if it is empty."""
    try:
        os.remove(log_path)
        os.rmdir(os.path.dirname(log_path))
    except OSError:
        pass


def _watch_parent(parent: int, log_path: str) -> None:
    # A worker stuck in a job would outlive a parent that was SIGKILLed; an idle one sees EOF.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            _orphaned(log_path)
            os._exit(1)


def is_out_of_memory(exc: BaseException) -> bool:
    """A memory blow-up, whatever the framework calls it (the job then dies as "oom")."""
    if isinstance(exc, MemoryError) or type(exc).__name__ in _OOM_EXCEPTIONS:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _OOM_MARKERS)


def _describe(exc: BaseException) -> str:
    """The exception as module.Type: first line of its message, then its traceback (without
    our own frame)."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    message = str(exc).strip().splitlines()
    summary = f"{name}: {message[0]}" if message else name
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return f"{summary}\n{''.join(traceback.format_exception(kind, exc, tb))}".rstrip()


def _worker_main(
    conn: Connection,
    target: str,
    setup: str | None,
    setup_arg: Any,
    memory_mb: int | None,
    log_path: str,
) -> None:
    os.setpgrp()  # so that killing the worker's group also kills what the job started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)
    faulthandler.enable(file=sys.stderr, all_threads=False)  # only the crashing thread: short tails
    threading.Thread(target=_watch_parent, args=(os.getppid(), log_path), daemon=True).start()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with lock:
                conn.send_bytes(data)
        except OSError:
            os._exit(1)  # the parent is gone

    try:
        run = _resolve(target)
        state = _resolve(setup)(setup_arg) if setup else None
    except BaseException as exc:  # any setup failure is reported, then the worker exits
        send(("setup_error", _describe(exc)))
        return
    if memory_mb is not None:
        _limit_address_space(memory_mb)
    send(("ready", _status_bytes("self", "VmRSS")))

    def note(stage: str) -> None:
        send(("note", str(stage)))

    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            _orphaned(log_path)
            return
        oom = _run_job(run, data, note, state, send)
        del data
        if oom:
            os._exit(_OOM_EXIT)  # an allocator that failed once is not trusted again


def _run_job(
    run: Callable[..., Any],
    data: bytes,
    note: Callable[[str], None],
    state: Any,
    send: Callable[[tuple[Any, ...]], None],
) -> bool:
    """Runs one pickled payload and sends the answer; True if the job ran out of memory.
    A function of its own so that the payload and result are freed before the next job."""
    try:
        message: tuple[Any, ...] = ("done", run(pickle.loads(data), note, state))
    except Exception as exc:  # SystemExit and KeyboardInterrupt end the worker: "exit"
        oom = is_out_of_memory(exc)
        if oom:
            # The failed job's frames hold the memory; free them before formatting anything.
            traceback.clear_frames(exc.__traceback__)
        try:
            message = ("died", "oom" if oom else "error", _describe(exc))
        except MemoryError:
            os._exit(_OOM_EXIT)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        send(message)
    except Exception as exc:  # the result did not pickle
        message = ("died", "oom" if is_out_of_memory(exc) else "error", f"result could not be pickled: {exc!r}")
        send(message)
    return bool(message[0] == "died" and message[1] == "oom")


# ---------------------------------------------------------------------------------------------
# Parent side


@dataclass(eq=False)
class _Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    log_path: str
    started: float
    state: str = "starting"  # "starting" | "idle" | "busy" | "retiring"
    job: int | None = None
    stage: str = ""
    last_progress: float = 0.0
    log_offset: int = 0
    rss_limit: int | None = None
    kill_reason: tuple[str, str] | None = None  # (symptom, summary) when the parent killed it
    setup_error: str = ""


def _kill_group(process: BaseProcess) -> None:
    pid = process.pid
    if pid is None:
        return
    try:
        if os.getpgid(pid) == pid:  # the worker made itself a group leader (not reaped yet)
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        process.kill()
    except (OSError, ValueError):
        pass


def _kill_all(processes: dict[int, BaseProcess], tmpdir: str) -> None:
    for process in list(processes.values()):
        _kill_group(process)
    for process in list(processes.values()):
        process.join(5.0)
    processes.clear()
    shutil.rmtree(tmpdir, ignore_errors=True)


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / _MIB:.0f} MiB"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class AnsweredJobs:
    """`results()` and `run()` over the answers a pool's event loop collects; shared by the
    local pool and the Ray pool, which differ only in how `submit` and `_step` work."""

    _answers: dict[int, Any]
    _unanswered: int
    _closed: bool

    def submit(self, payload: Any) -> int:
        raise NotImplementedError

    def _step(self) -> None:
        raise NotImplementedError

    def results(self) -> Iterator[tuple[int, Any]]:
        """(job id, result or Died) as jobs finish, until every submitted job is answered."""
        while True:
            if self._answers:
                job = next(iter(self._answers))
                yield job, self._answers.pop(job)
            elif self._unanswered == 0:
                return
            elif self._closed:
                raise SandboxError(f"the pool was closed with {self._unanswered} job(s) unanswered")
            else:
                self._step()

    def run(self, payloads: Sequence[Any]) -> list[Any]:
        """Submit all payloads and return their results (or Died) in order."""
        jobs = [self.submit(p) for p in payloads]
        done = 0
        while done < len(jobs):
            if jobs[done] in self._answers:
                done += 1
            elif self._closed:
                raise SandboxError("the pool was closed while jobs were running")
            else:
                self._step()
        return [self._answers.pop(job) for job in jobs]



class WorkerPool(AnsweredJobs):
    """`size` persistent workers running `target` ("package.module:function") on payloads.

    `setup(setup_arg)` runs once per worker before the memory limit applies; its result is
    passed to every `target(payload, note, state)` call. Construction blocks until every worker
    finished setup and raises SandboxError if one failed. Not thread-safe: use it from one thread.

    How it works. Workers are started with the "spawn" context (forking after torch or tensorflow
    is imported is unsafe), each with a duplex Pipe and its own process group. A worker sends its
    stdout and stderr to a log file in the pool's temp dir (so C-level messages are captured),
    runs setup, caps its address space (RLIMIT_AS = VmSize after setup + budget), reports "ready"
    with its RSS, then loops: receive a pickled payload, run the target, send ("done", result)
    or ("died", symptom, detail); note(stage) sends ("note", stage).

    The parent is a single-threaded event loop (`_step`, run by `results` and `run`): it waits on
    every worker's pipe and process sentinel with a short timeout, handles messages, buries
    workers that exited, kills (with their process group) workers that sent nothing for
    `timeout_s` or whose RSS passed (RSS after setup + budget), starts replacements and hands
    queued jobs to idle workers. A died job is answered, never retried. After an out-of-memory
    error the worker is replaced too: an allocator that failed once is not trusted again.
    """

    def __init__(
        self,
        target: str,
        size: int,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing is safe
        setup: str | None = None,
        setup_arg: Any = None,
    ) -> None:
        if size < 1:
            raise SandboxError(f"size must be at least 1, got {size}")
        if not limits.timeout_s > 0:
            raise SandboxError(f"timeout_s must be positive, got {limits.timeout_s}")
        if limits.memory_mb is not None and limits.memory_mb < 1:
            raise SandboxError(f"memory_mb must be positive or None, got {limits.memory_mb}")
        for spec in (target, setup):
            if spec is not None and spec.count(":") != 1:
                raise SandboxError(f"expected 'package.module:function', got {spec!r}")
        self.size = size
        self.restarts = 0
        self._target = target
        self._setup = setup
        self._setup_arg = setup_arg
        self._limits = limits
        self._ctx = multiprocessing.get_context("spawn")
        self._tmpdir = tempfile.mkdtemp(prefix="gauntlet-sandbox-")
        self._workers: list[_Worker | None] = [None] * size
        self._setup_failures = [0] * size  # consecutive, per slot
        self._retry_at = [0.0] * size
        self._last_setup_error = ""
        self._queue: deque[tuple[int, bytes]] = deque()
        self._answers: dict[int, Any] = {}
        self._unanswered = 0
        self._next_id = 0
        self._spawned = 0
        self._last_rss_poll = 0.0
        self._closed = False
        self._starting_up = True
        # Shared with the finalizer, which must not hold the pool itself.
        self._processes: dict[int, BaseProcess] = {}
        self._finalizer = weakref.finalize(self, _kill_all, self._processes, self._tmpdir)
        # Registered after multiprocessing's own exit hook (which joins non-daemon children),
        # so it runs first; workers are not daemons because frameworks start processes of their own.
        self._finalizer.atexit = False
        atexit.register(self._finalizer)
        try:
            for slot in range(size):
                self._start(slot)
            while not self._last_setup_error and any(
                w is not None and w.state == "starting" for w in self._workers
            ):
                self._step()
            if self._last_setup_error:
                raise SandboxError(f"worker setup failed for {target}:\n{self._last_setup_error}")
        except BaseException:
            self.close()
            raise
        self._starting_up = False

    # -- public ------------------------------------------------------------------------------

    def submit(self, payload: Any) -> int:
        """Queue one job; returns its id (0, 1, 2, ...). Raises if the payload does not pickle."""
        if self._closed:
            raise SandboxError("the pool is closed")
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        job = self._next_id
        self._next_id += 1
        self._unanswered += 1
        self._queue.append((job, data))
        self._dispatch()
        return job

    def close(self) -> None:
        """Kill every worker and remove the temp dir. Idempotent; unanswered jobs stay so."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        atexit.unregister(self._finalizer)
        for w in self._workers:
            if w is not None:
                w.conn.close()
        self._workers = [None] * self.size
        self._queue.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the event loop ----------------------------------------------------------------------

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers if w is not None]

    def _setup_timeout(self) -> float:
        return max(self._limits.timeout_s, _SETUP_TIMEOUT_S)

    def _step(self) -> None:
        """Wait a little for any worker event, then handle events, deadlines and the queue."""
        now = time.monotonic()
        timeout = _POLL_S
        for w in self._live():
            if w.state == "busy":
                timeout = min(timeout, w.last_progress + self._limits.timeout_s - now)
            elif w.state == "starting":
                timeout = min(timeout, w.started + self._setup_timeout() - now)
        # Keyed by object, not compared later: a buried worker's fd numbers are reused at once.
        pipes = {id(w.conn): w for w in self._live()}
        sentinels = {w.process.sentinel: w for w in self._live()}
        if pipes:
            ready = wait([w.conn for w in pipes.values()] + list(sentinels), max(timeout, 0.0))
        else:
            time.sleep(_POLL_S)
            ready = []
        talked = [pipes[id(r)] for r in ready if isinstance(r, Connection)]
        exited = [sentinels[r] for r in ready if isinstance(r, int)]
        for w in talked:
            if self._current(w) and not self._drain(w):
                # EOF usually means the worker is exiting: give its exit status a moment to arrive.
                w.process.join(1.0)
                if w.process.exitcode is None:
                    self._kill(w, ("killed", "the worker closed its pipe"))
                else:
                    self._bury(w)
        for w in exited + [w for w in self._live() if w.state == "retiring"]:
            if self._current(w):
                self._bury(w)
        self._check_deadlines()
        self._check_memory()
        self._refill()
        self._dispatch()

    def _current(self, w: _Worker) -> bool:
        """False once `w` was buried (and maybe replaced) earlier in this step."""
        return self._workers[w.slot] is w

    def _drain(self, w: _Worker) -> bool:
        """Handle the worker's pending messages; False if its pipe is broken."""
        for _ in range(_DRAIN_MAX):
            try:
                if not w.conn.poll():
                    return True
                data = w.conn.recv_bytes()
            except (EOFError, OSError):
                return False
            try:
                message = pickle.loads(data)
            except Exception as exc:  # e.g. a result class the parent cannot import
                if w.state == "busy":
                    self._answer(w, Died("error", w.stage, f"result could not be unpickled: {exc!r}"))
                continue
            self._handle(w, message)
        return True

    def _handle(self, w: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "note" and w.state == "busy":
            w.stage = message[1]
            w.last_progress = time.monotonic()
        elif kind == "done" and w.state == "busy":
            self._answer(w, message[1])
        elif kind == "died" and w.state == "busy":
            symptom, detail = message[1], message[2]
            self._answer(w, Died(symptom, w.stage, self._with_tail(detail, w)))
            if symptom != "error":
                w.state = "retiring"  # the worker exits on its own; it is replaced in _step
        elif kind == "ready" and w.state == "starting":
            w.state = "idle"
            self._setup_failures[w.slot] = 0
            rss, budget = message[1], self._limits.memory_mb
            if rss is not None and budget is not None:
                w.rss_limit = rss + budget * _MIB
        elif kind == "setup_error" and w.state == "starting":
            w.setup_error = message[1]

    def _answer(self, w: _Worker, result: Any) -> None:
        assert w.job is not None
        self._answers[w.job] = result
        self._unanswered -= 1
        w.job = None
        w.state = "idle"

    def _kill(self, w: _Worker, reason: tuple[str, str]) -> None:
        w.kill_reason = reason
        _kill_group(w.process)
        self._bury(w)

    def _bury(self, w: _Worker) -> None:
        """The worker has exited (or must): answer its job, clean up, start a replacement."""
        if not w.conn.closed:
            self._drain(w)  # a "done" or "died" sent just before exiting still counts
        _kill_group(w.process)
        w.process.join(5.0)
        if w.state == "busy":
            self._answer(w, self._classify(w))
        elif w.state == "starting":
            if not w.setup_error:
                symptom, summary = self._exit_summary(w)
                w.setup_error = self._with_tail(f"{symptom}: {summary}", w, from_start=True)
                if w.setup_error == f"{symptom}: {summary}":
                    w.setup_error += _EARLY_DEATH_HINT
            self._last_setup_error = w.setup_error
            self._setup_failures[w.slot] += 1
        w.conn.close()
        if w.process.exitcode is not None:  # else close() tries again
            self._processes.pop(w.process.pid or 0, None)
            w.process.close()  # its sentinel fd, now rather than at garbage collection
        try:
            os.remove(w.log_path)
        except OSError:
            pass
        self._workers[w.slot] = None  # _refill starts its replacement

    def _given_up(self, slot: int) -> bool:
        return self._setup_failures[slot] >= _SETUP_ATTEMPTS

    def _refill(self) -> None:
        """Start a replacement in every empty slot that has not been given up."""
        if self._closed or self._starting_up:
            return  # during construction a failed setup makes the constructor raise instead
        now = time.monotonic()
        for slot, w in enumerate(self._workers):
            if w is None and not self._given_up(slot) and now >= self._retry_at[slot]:
                try:
                    self._start(slot)
                except OSError as exc:  # e.g. fork failing for lack of memory: try again soon
                    self._setup_failures[slot] += 1
                    self._last_setup_error = f"could not start a worker process: {exc!r}"
                    self._retry_at[slot] = now + 1.0
                else:
                    self.restarts += 1

    def _exit_summary(self, w: _Worker) -> tuple[str, str]:
        if w.kill_reason is not None:
            return w.kill_reason
        code = w.process.exitcode
        if code is None:
            return "killed", "the worker could not be reaped"
        if code < 0:
            name = _signal_name(-code)
            if -code in _CRASH_SIGNALS:
                return "segfault", name
            if -code == signal.SIGABRT:
                return "abort", name
            return "killed", name
        if code == _OOM_EXIT:
            return "oom", "MemoryError (the worker could not report it)"
        return "exit", f"exit code {code}"

    def _classify(self, w: _Worker) -> Died:
        symptom, summary = self._exit_summary(w)
        detail = self._with_tail(summary, w)
        if symptom == "abort" and any(m in detail.lower() for m in _OOM_MARKERS):
            symptom = "oom"
        return Died(symptom, w.stage, detail)

    def _with_tail(self, summary: str, w: _Worker, from_start: bool = False) -> str:
        """summary plus the last lines the worker wrote to its log during the current job."""
        try:
            with open(w.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0 if from_start else w.log_offset, size - _TAIL_BYTES)
                f.seek(start)
                data = f.read()
        except OSError:
            return summary
        lines = data.decode("utf-8", "replace").splitlines()
        if start > w.log_offset and lines:
            lines = lines[1:]  # cut mid-line
        tail = "\n".join(lines[-_TAIL_LINES:]).strip()
        return f"{summary}\n--- worker output ---\n{tail}" if tail else summary

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in self._live():
            if w.state == "busy" and now - w.last_progress > self._limits.timeout_s:
                self._kill(w, ("hang", f"no progress for {float(self._limits.timeout_s)} s"))
            elif w.state == "starting" and now - w.started > self._setup_timeout():
                self._kill(w, ("hang", f"setup took longer than {self._setup_timeout()} s"))

    def _check_memory(self) -> None:
        now = time.monotonic()
        if now - self._last_rss_poll < _POLL_S:
            return
        self._last_rss_poll = now
        for w in self._live():
            if w.state != "busy" or w.rss_limit is None or w.process.pid is None:
                continue
            rss = _status_bytes(w.process.pid, "VmRSS")
            if rss is not None and rss > w.rss_limit:
                self._kill(w, ("oom", f"RSS {_fmt_bytes(rss)} > {_fmt_bytes(w.rss_limit)}"))

    def _dispatch(self) -> None:
        while self._queue:
            idle = next((w for w in self._live() if w.state == "idle"), None)
            if idle is None:
                break
            if not idle.process.is_alive():  # died while idle; not noticed by _step yet
                self._bury(idle)
                continue
            job, data = self._queue.popleft()
            try:
                idle.log_offset = os.path.getsize(idle.log_path)
                if idle.log_offset > _LOG_MAX:
                    # Only the current job's lines matter; the worker appends, so this is safe.
                    os.truncate(idle.log_path, 0)
                    idle.log_offset = 0
            except OSError:
                idle.log_offset = 0
            idle.state, idle.job, idle.stage = "busy", job, ""
            idle.last_progress = time.monotonic()
            try:
                idle.conn.send_bytes(data)
            except OSError:  # it died while idle: the job never started, so it goes back
                self._queue.appendleft((job, data))
                idle.state, idle.job = "idle", None
                self._kill(idle, ("killed", "the worker died while idle"))
        if self._queue and not self._live() and all(map(self._given_up, range(self.size))):
            # Every slot gave up after repeated setup failures: nothing will ever run these.
            while self._queue:
                job, _ = self._queue.popleft()
                self._answers[job] = Died(
                    "error", "", f"no worker could be set up:\n{self._last_setup_error}"
                )
                self._unanswered -= 1

    def _start(self, slot: int) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        log_path = os.path.join(self._tmpdir, f"worker-{slot}-{self._spawned}.log")
        self._spawned += 1
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self._target, self._setup, self._setup_arg, self._limits.memory_mb, log_path),
            name=f"gauntlet-sandbox-{slot}",
        )
        try:
            process.start()
        finally:
            child_conn.close()
        assert process.pid is not None
        self._processes[process.pid] = process
        self._workers[slot] = _Worker(slot, process, parent_conn, log_path, started=time.monotonic())
