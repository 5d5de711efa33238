"""Sandbox workers as Ray actors: the WorkerPool API over a Ray cluster, for `gauntlet fuzz --ray`.
Each actor wraps a one-worker WorkerPool, so crashes are classified on the remote node as locally.
Ray is imported lazily (it is an optional extra); nothing here imports torch or tensorflow."""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fuzz.sandbox import AnsweredJobs, Died, SandboxError, SandboxLimits, WorkerPool
from generators.errors import GauntletError

if TYPE_CHECKING:
    from ray.actor import ActorHandle
    from ray.types import ObjectRef

__all__ = ["RayPool", "connect"]

_IN_FLIGHT = 2  # jobs per actor: one running, one already waiting, so an actor never idles
_SETUP_ATTEMPTS = 3  # consecutive failed actor starts after which a slot is given up (as WorkerPool)
_WAIT_S = 1.0  # longest single ray.wait, so Ctrl-C is seen promptly
_START_TIMEOUT_S = 900.0  # actor placement + setup at construction; setup alone may take 300 s
_CONNECT_TIMEOUT_S = 5.0  # TCP check before ray.init, which otherwise retries for minutes
_START_HINT = "start one with `ray start --head` (then `ray start --address HEAD:6379` on the other nodes)"
# Gauntlet's own packages, shipped to cluster nodes so that workers run the driver's code.
_PACKAGES = ("fuzz", "generators", "verify")


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise GauntletError("Ray is not installed: pip install 'gauntlet[ray]' (on every node)") from exc
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """("10.0.0.1", 6379) from "10.0.0.1:6379" or "ray://10.0.0.1:10001"; None if malformed."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _resolve_auto() -> str | None:
    """The address `auto` stands for: $RAY_ADDRESS, else the cluster `ray start` recorded on this
    machine; None when Ray cannot say (the caller then lets ray.init decide)."""
    env = os.environ.get("RAY_ADDRESS", "")
    if env and env != "auto":
        return env
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a private helper: tolerate its disappearance, the check is only a shortcut
        return None
    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError as exc:
        raise GauntletError(f"no running Ray cluster found for --ray auto ({exc}); {_START_HINT}") from exc
    except Exception:
        return None
    return found if isinstance(found, str) else None


def _check_reachable(address: str, shown: str) -> None:
    parsed = _host_port(address)
    if parsed is None:
        raise GauntletError(f"bad Ray address {shown!r}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection(parsed, timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise GauntletError(
            f"cannot reach a Ray cluster at {address}"
            f"{'' if address == shown else f' (from --ray {shown})'}: {reason}; {_START_HINT}"
        ) from exc


def _shipped_code() -> dict[str, Any]:
    """runtime_env that uploads Gauntlet's own packages (pure Python, well under 1 MB) to every node."""
    import importlib

    dirs = []
    for name in _PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if module.__file__ is not None:
            dirs.append(str(Path(module.__file__).parent))
    return {"py_modules": dirs, "excludes": ["__pycache__", "*.pyc"]}


def connect(address: str, *, num_cpus: int | None = None, ship_code: bool | None = None) -> bool:
    """Connect this process to Ray; True if this call did it (the caller then owns ray.shutdown()),
    False if Ray was already initialized (that connection is reused, whatever its address).

    address: "auto" (a running cluster: $RAY_ADDRESS or the one `ray start` made on this machine),
    "HOST:PORT" (the head's GCS port, 6379 by default), "ray://HOST:PORT" (Ray Client, port 10001),
    or "local" (a private instance with `num_cpus` CPUs, gone when it is shut down).
    ship_code: upload fuzz/, generators/ and verify/ from this process to the workers (default: on
    for a cluster, off for "local" where workers import the same files anyway).
    Raises GauntletError with the address and a hint when the cluster cannot be reached."""
    ray = _ray()
    local = address == "local"
    if not local:  # checked even when Ray is initialized, so a bad address never passes unnoticed
        target = _resolve_auto() if address == "auto" else address
        if target is not None:
            _check_reachable(target, address)
    if ray.is_initialized():
        return False
    runtime_env = _shipped_code() if (not local if ship_code is None else ship_code) else None
    try:
        if local:
            ray.init(
                address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                logging_level=logging.ERROR, runtime_env=runtime_env,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env)
    except Exception as exc:  # ConnectionError, version mismatch (RuntimeError), bad runtime_env, ...
        if local:
            raise GauntletError(f"could not start a local Ray instance: {exc}") from exc
        hint = _START_HINT
        if not os.environ.get("RAY_AUTH_MODE"):
            hint += (
                "; if the cluster uses token authentication (Ray turns it on when the head has"
                " ~/.ray/auth_token), set RAY_AUTH_MODE=token and the head's token here"
                " (~/.ray/auth_token or $RAY_AUTH_TOKEN)"
            )
        raise GauntletError(f"could not connect to the Ray cluster at {address}: {exc}; {hint}") from exc
    return True


# ---------------------------------------------------------------------------------------------
# The actor (runs on a cluster node)


@dataclass(frozen=True)
class _Ready:
    node: str  # the node's IP address
    error: str  # the WorkerPool's setup error; "" if the actor is ready for jobs


class _Actor:
    """One Ray actor: a one-worker WorkerPool, so a crash in a backend is contained in a process
    of its own on that node and classified there. Setup errors are returned, not raised, so the
    driver gets the message rather than Ray's wrapping of a failed actor constructor."""

    def __init__(self, target: str, limits: SandboxLimits, setup: str | None, setup_arg: Any) -> None:
        self._pool: WorkerPool | None = None
        self._error = ""
        self._restarts_seen = 0
        try:
            self._pool = WorkerPool(target, 1, limits, setup, setup_arg)
        except SandboxError as exc:
            self._error = str(exc)

    def ready(self) -> _Ready:
        return _Ready(str(_ray().util.get_node_ip_address()), self._error)

    def run(self, payload: Any) -> tuple[Any, int]:
        """(result or Died, sandbox workers restarted since the previous call)."""
        if self._pool is None:  # not reached: the driver sends jobs to ready actors only
            return Died("error", "ray", f"worker setup failed:\n{self._error}"), 0
        try:
            result = self._pool.run([payload])[0]
        except Exception as exc:  # e.g. the payload does not pickle for the sandbox
            result = Died("error", "ray", f"the Ray actor could not run the job: {exc!r}")
        restarts, self._restarts_seen = self._pool.restarts - self._restarts_seen, self._pool.restarts
        return result, restarts


# ---------------------------------------------------------------------------------------------
# The driver side


@dataclass(eq=False)
class _Slot:
    index: int
    actor: ActorHandle[Any] | None = None
    generation: int = 0  # bumped for each new actor, so answers from a dead one are told apart
    state: str = "empty"  # "starting" | "ready" | "empty" (given up, or closed)
    ready_ref: ObjectRef[_Ready] | None = None
    node: str = ""
    in_flight: int = 0
    failures: int = 0  # consecutive failed starts


class RayPool(AnsweredJobs):
    """`size` Ray actors running `target(payload, note, state)`: the public API of WorkerPool.

    Each actor (num_cpus=1, spread over the nodes) holds a one-worker WorkerPool, so a segfault,
    abort, hang or OOM in a job comes back as the same `Died` it would be locally, and the actor
    replaces its worker. If the actor itself dies (its node is lost, or Ray killed it), each of its
    in-flight jobs is answered `Died("killed", "ray", ...)` and a new actor takes the slot. Jobs
    go to the actor with the fewest in flight, at most two each; `results` waits on them with
    ray.wait. Results are Python objects sent back by Ray; the driver keeps every store.
    Construction blocks until every actor finished setup (SandboxError if one failed).
    Not thread-safe: use it from one thread. Ray must not be used for anything else by this
    process meanwhile, if `address` made this pool start or connect Ray (close() shuts it down).
    """

    def __init__(
        self,
        target: str,
        size: int,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing is safe
        setup: str | None = None,
        setup_arg: Any = None,
        address: str = "auto",
        ship_code: bool | None = None,
    ) -> None:
        if size < 1:
            raise SandboxError(f"size must be at least 1, got {size}")
        for spec in (target, setup):
            if spec is not None and spec.count(":") != 1:
                raise SandboxError(f"expected 'package.module:function', got {spec!r}")
        self.size = size
        self.restarts = 0
        self._ray = _ray()
        self._closed = False
        self._owns_ray = connect(address, num_cpus=size, ship_code=ship_code)
        self._slots = [_Slot(i) for i in range(size)]
        self._queue: deque[tuple[int, Any]] = deque()  # (job id, payload)
        self._jobs: dict[Any, tuple[int, int, int, str]] = {}  # job ref -> (job id, slot, generation, node)
        self._answers: dict[int, Any] = {}
        self._unanswered = 0
        self._next_id = 0
        self._last_setup_error = ""
        try:
            cpus = self._ray.cluster_resources().get("CPU", 0)
            if size > cpus:
                raise GauntletError(
                    f"{size} workers asked for, but the Ray cluster has {cpus:g} CPUs in all "
                    "(one worker takes one CPU): use fewer workers or add nodes"
                )
            remote = self._ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD")
            self._actor_class = remote(_Actor)
            self._actor_args = (target, limits, setup, setup_arg)
            for slot in self._slots:
                self._start(slot)
            self._await_start(target)
        except BaseException:
            self.close()
            raise

    # -- public ------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        """The node (IP address) each live actor runs on, by slot; "" where none is ready."""
        return [s.node if s.state == "ready" else "" for s in self._slots]

    def submit(self, payload: Any) -> int:
        """Queue one job; returns its id (0, 1, 2, ...). Raises if the payload does not pickle."""
        if self._closed:
            raise SandboxError("the pool is closed")
        # The actor's sandbox pickles it again, so fail here as WorkerPool would, not remotely.
        # Sent inline rather than through ray.put, which tripled the per-job overhead.
        pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        job = self._next_id
        self._next_id += 1
        self._unanswered += 1
        self._queue.append((job, payload))
        self._dispatch()
        return job

    def close(self) -> None:
        """Kill every actor (their workers follow) and shut Ray down if this pool started or
        connected it. Idempotent; unanswered jobs stay so."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            self._retire(slot)
        self._queue.clear()
        self._jobs.clear()
        if self._owns_ray:
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- actors ------------------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.actor = self._actor_class.remote(*self._actor_args)
        slot.generation += 1
        slot.state, slot.in_flight, slot.node = "starting", 0, ""
        slot.ready_ref = slot.actor.ready.remote()

    def _retire(self, slot: _Slot) -> None:
        if slot.actor is not None:
            try:
                self._ray.kill(slot.actor, no_restart=True)
            except Exception:  # already dead, or Ray is shutting down: nothing left to kill
                pass
        slot.actor, slot.ready_ref, slot.state, slot.in_flight = None, None, "empty", 0

    def _replace(self, slot: _Slot) -> None:
        """Retire the slot's actor and start another, unless the slot has failed too often."""
        self._retire(slot)
        if slot.failures < _SETUP_ATTEMPTS and not self._closed:
            self._start(slot)
            self.restarts += 1

    def _await_start(self, target: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while any(s.state == "starting" for s in self._slots):
            if self._last_setup_error:
                break
            if time.monotonic() > deadline:
                busy = sum(s.state == "starting" for s in self._slots)
                raise GauntletError(
                    f"{busy} of {self.size} Ray actors did not start within {_START_TIMEOUT_S:g} s: the cluster"
                    " lacks free CPUs (other jobs hold them?) or a node cannot start workers; see `ray status`"
                )
            self._step()
        if self._last_setup_error:
            raise SandboxError(f"worker setup failed for {target}:\n{self._last_setup_error}")

    # -- the event loop ----------------------------------------------------------------------

    def _step(self) -> None:
        """Wait a little for any job or actor start to finish, handle what finished, dispatch."""
        starting = {s.ready_ref: s for s in self._slots if s.state == "starting" and s.ready_ref is not None}
        refs = list(self._jobs) + list(starting)
        if not refs:
            self._dispatch()
            if self._unanswered and not self._answers and not self._jobs:
                raise SandboxError("internal error: jobs are queued but no actor is running or starting")
            return
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=_WAIT_S)
        if ready:  # collect everything else that finished meanwhile, without waiting
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in starting:
                self._started(starting[ref], ref)
            elif ref in self._jobs:
                self._finished(ref)
        self._dispatch()

    def _started(self, slot: _Slot, ref: ObjectRef[_Ready]) -> None:
        if slot.ready_ref != ref:  # a stale answer from an actor already replaced
            return
        try:
            answer: _Ready = self._ray.get(ref)
            error = answer.error
        except Exception as exc:  # the actor died while starting (node lost, runtime_env failed, ...)
            answer, error = _Ready("", ""), f"the Ray actor died while starting: {exc}"
        if error:
            slot.failures += 1
            self._last_setup_error = error
            self._replace(slot)
        else:
            slot.state, slot.node, slot.ready_ref, slot.failures = "ready", answer.node, None, 0

    def _finished(self, ref: ObjectRef[tuple[Any, int]]) -> None:
        job, index, generation, node = self._jobs.pop(ref)
        slot = self._slots[index]
        current = slot.generation == generation and slot.state == "ready"
        if current:
            slot.in_flight -= 1
        ray_errors = self._ray.exceptions
        try:
            result, restarts = self._ray.get(ref)
        except ray_errors.RayActorError as exc:
            where = f" on {node}" if node else ""
            result = Died("killed", "ray", f"the Ray actor running this job died{where} (node lost or actor killed)\n{exc}")
            if current:
                self._replace(slot)
        except Exception as exc:  # e.g. the result could not be deserialized here
            result = Died("error", "ray", f"the result could not be fetched from Ray: {exc!r}")
        else:
            self.restarts += restarts
        self._answers[job] = result
        self._unanswered -= 1

    def _dispatch(self) -> None:
        while self._queue:
            free = [s for s in self._slots if s.state == "ready" and s.in_flight < _IN_FLIGHT]
            if not free:
                break
            slot = min(free, key=lambda s: s.in_flight)
            job, payload = self._queue.popleft()
            assert slot.actor is not None
            self._jobs[slot.actor.run.remote(payload)] = (job, slot.index, slot.generation, slot.node)
            slot.in_flight += 1
        if self._queue and all(s.state == "empty" for s in self._slots) and not self._closed:
            # Every slot gave up after repeated failed starts: nothing will ever run these.
            while self._queue:
                job, _ = self._queue.popleft()
                self._answers[job] = Died("error", "", f"no worker could be set up:\n{self._last_setup_error}")
                self._unanswered -= 1
