"""Data-parallel training on ``torch.distributed``, one process per rank, launched by torchrun.

    torchrun --nproc-per-node 2 -m trainer.cli --task CartPole-v1
    torchrun --nproc-per-node 2 --no-python pyenvpool-train --task CartPole-v1
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29400 -m trainer.cli --task BinPack-v0   # on every node

Every rank runs the whole training loop of ``trainer.train`` on its own env
pool; a ``World`` (this module) is the loop's only view of the other ranks.
Without torchrun, or with one process, ``World()`` has one rank and every
collective below is a no-op that returns its input, so a one-process run is
exactly the plain run.

Invariants:

* **Seeds.** ``num_envs`` and ``num_steps`` are per rank. Rank r's training
  envs (the pool seed; env i draws from the stream ``(pool seed, i)``) and its
  action/search/replay sampler use ``rank_seed(seed, r)``: the run's seed on
  rank 0, and on rank r > 0 the r-th child of ``numpy.random.SeedSequence(seed)``
  (a 64-bit value). The network is initialised from the run's seed on every
  rank and rank 0's parameters are broadcast before training.
* **Gradients.** After every backward pass the algorithms call
  ``average_gradients``: the gradients, flattened into one buffer, are
  all-reduced (sum) and divided by the world size, *before* gradient
  clipping. Every rank then takes the same optimiser step, so parameters stay
  bit-identical; each checkpoint compares a SHA-256 of every rank's parameters
  and refuses to save if they differ. Collectives are deterministic for a fixed
  world size, so a seeded run is bit-reproducible for a fixed world size (and
  fixed thread counts, as a one-process run).
* **Accounting.** One update consumes ``world_size * num_envs * num_steps``
  env steps; ``env_steps``, ``total_steps``, the evaluation and checkpoint
  intervals, the learning-rate schedule and the telemetry step axis all count
  every rank's steps. ACTOR statistics are over every rank's finished
  episodes; TRAINER metrics are the mean over ranks; MISC timings are rank 0's.
* **Rank 0 owns the run directory.** It resolves the config, reads
  checkpoints and config.yaml, writes config.yaml, metrics.jsonl, TensorBoard,
  the plot, the console and progress bar, runs every evaluation and writes
  every checkpoint. Other ranks get what they need through collectives (so no
  shared filesystem is needed) and never write into the run directory.
* **Checkpoints.** At a checkpoint every rank sends rank 0 its live state: env
  states (``export_states``), sampler, RNG and the algorithm's per-rank state
  (SPO's replay). Rank 0 writes them into one atomic checkpoint: rank 0's at
  the top level of ``state.pt`` (laid out as a one-process checkpoint), the
  others under ``state["ranks"]``. A checkpoint therefore holds all ranks or
  does not exist.
* **Resume.** With the same world size, each rank gets its own state back and
  the run continues bit for bit. With another world size, the model,
  optimiser, counters, learning-rate schedule (re-anchored to decay over the
  remaining steps at the new global batch) and ACTOR window carry over; rank r
  takes saved rank r's env states, sampler and RNG where the checkpoint has
  that rank, and otherwise starts fresh envs and sampler from
  ``rank_seed(seed, r, update)`` (and, for SPO, an empty replay); saved ranks
  beyond the new world size are dropped.
* **Failures.** A collective that fails (another rank died, or stopped
  answering for ``PYENVPOOL_DIST_TIMEOUT`` seconds) raises ``DistributedError``
  naming the step; no checkpoint is written after it, and a checkpoint being
  written is complete or absent (``trainer.checkpoint``). torchrun then stops
  the remaining ranks and reports which one failed first.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import pickle
import re
from collections.abc import Iterable
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist

T = TypeVar("T")
# Keys of a checkpoint's ``state`` that belong to one rank.
RANK_STATE = ("algorithm", "envs", "rng")
BACKEND_VARIABLE = "PYENVPOOL_DIST_BACKEND"  # gloo | nccl: overrides the automatic choice
TIMEOUT_VARIABLE = "PYENVPOOL_DIST_TIMEOUT"  # seconds a collective may wait (default 1800)


class DistributedError(RuntimeError):
    """A collective failed: another rank died, stopped answering or disagrees."""


class RemoteError(Exception):
    """Raised on the other ranks when a step that rank 0 runs for everyone
    (reading the config or a checkpoint) failed there; ``error`` is rank 0's
    exception, which rank 0 reports."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def rank_seed(seed: int, rank: int, generation: int = 0) -> int:
    """The seed of rank ``rank``'s training envs and sampler (see the module
    docstring). ``generation`` > 0 (the update a resume with another world
    size starts at) gives a rank that the checkpoint has no state for a stream
    that no earlier rank used."""
    if rank == 0 and generation == 0:
        return seed
    key = (rank,) if generation == 0 else (rank, generation)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor inside dicts, lists and tuples moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def mean_metrics(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """Every rank's TRAINER metrics averaged key by key (equal values, such as
    the learning rate, are kept as they are)."""
    if len(per_rank) == 1:
        return per_rank[0]
    out: dict[str, Any] = {}
    for key, value in per_rank[0].items():
        values = [metrics[key] for metrics in per_rank]
        if all(v == value for v in values) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            out[key] = value
        else:
            out[key] = float(np.mean(values))
    return out


# ------------------------------------------------------------- checkpoints
def merge_rank_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One checkpoint ``state`` from every rank's ``{algorithm, envs, rng}``:
    rank 0's at the top level, as in a one-process checkpoint, the others under
    ``ranks``."""
    if len(states) == 1:
        return dict(states[0])
    return {**states[0], "world_size": len(states), "ranks": list(states[1:])}


def split_rank_states(
    state: dict[str, Any], size: int, per_rank_keys: Iterable[str]
) -> list[dict[str, Any]]:
    """A checkpoint ``state`` cut into what each of ``size`` ranks loads.

    Rank r gets the shared part and saved rank r's ``{algorithm, envs, rng}``.
    A rank the checkpoint has no state for gets ``envs`` and ``rng`` None and
    rank 0's algorithm state without ``per_rank_keys`` (its sampler, SPO's
    replay), which it keeps fresh. ``saved_world_size`` tells the world size
    that wrote the checkpoint."""
    saved = [{key: state[key] for key in RANK_STATE}, *state.get("ranks", [])]
    shared = {k: v for k, v in state.items() if k not in (*RANK_STATE, "ranks", "world_size")}
    per_rank_keys = set(per_rank_keys)
    out = []
    for rank in range(size):
        if rank < len(saved):
            part = saved[rank]
        else:
            algorithm = {k: v for k, v in saved[0]["algorithm"].items() if k not in per_rank_keys}
            part = {"algorithm": algorithm, "envs": None, "rng": None}
        out.append({**shared, **part, "saved_world_size": len(saved)})
    return out


def choose_backend(local_size: int) -> str:
    """The process-group backend for ``local_size`` ranks on this machine:
    ``cpu:gloo,cuda:nccl`` when each has a GPU of its own (NCCL refuses two
    ranks on one GPU), else ``gloo`` (which also all-reduces CUDA tensors).
    ``PYENVPOOL_DIST_BACKEND=gloo|nccl`` decides for CUDA tensors instead."""
    choice = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if choice not in ("", "gloo", "nccl"):
        raise DistributedError(f"{BACKEND_VARIABLE}={choice!r}: expected gloo or nccl")
    if not choice:
        own_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= local_size
        choice = "nccl" if own_gpu and dist.is_nccl_available() else "gloo"
    return "cpu:gloo,cuda:nccl" if choice == "nccl" else "gloo"


# ------------------------------------------------------------------ world
class World:
    """This process's place among the ranks, and the collectives the trainer uses.

    ``World()`` is one process (no process group); ``World.from_environment()``
    joins the group that torchrun describes in the environment.
    """

    def __init__(
        self,
        rank: int = 0,
        size: int = 1,
        local_rank: int = 0,
        local_size: int = 1,
        backend: str = "",
    ) -> None:
        self.rank, self.size = rank, size
        self.local_rank, self.local_size = local_rank, local_size
        self.backend = backend

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size}, backend={self.backend or None})"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> World:
        """Join the process group of a torchrun launch (``WORLD_SIZE`` > 1);
        otherwise the one-process world.

        The backend is ``choose_backend``'s: gloo for CPU tensors, and NCCL
        for CUDA tensors when every local rank has a GPU of its own."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
        backend = choose_backend(local_size)
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_VARIABLE, "1800")))
        try:
            # torchrun's store outlives a restart (--max-restarts) and still
            # holds the dead attempt's addresses: each attempt keys its own.
            store, _, _ = next(dist.rendezvous("env://", timeout=timeout))
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            store = dist.PrefixStore(f"pyenvpool/attempt-{attempt}", store)
            dist.init_process_group(
                backend, store=store, rank=rank, world_size=size, timeout=timeout
            )
        except RuntimeError as e:
            raise DistributedError(f"rank {rank}: cannot join the process group: {e}") from None
        return cls(rank, size, local_rank, local_size, backend)

    def close(self) -> None:
        """Leave the process group (best effort: after a failure it may be broken)."""
        if self.size > 1 and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except RuntimeError:
                pass

    # ----------------------------------------------------------- placement
    def device(self, device: torch.device) -> torch.device:
        """A rank's device: ``cuda`` without an index means this rank's GPU
        (local rank modulo the GPUs; ranks share GPUs when there are fewer)."""
        if self.size > 1 and device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)  # NCCL works on the current device
        return device

    def env_threads(self, configured: int) -> int | None:
        """Engine threads of a pool: ``configured``, or for 0 the engine's
        default (one per core) alone and this node's cores split evenly
        between its ranks otherwise."""
        if configured or self.local_size == 1:
            return configured or None
        return max(1, _cores() // self.local_size)

    def oversubscription(self, torch_threads: int, env_threads: int | None) -> str | None:
        """A warning when this node's ranks ask for more threads than it has cores."""
        cores = _cores()
        engine = env_threads or cores
        if self.local_size * max(torch_threads, engine) <= cores:
            return None
        return (
            f"warning: {self.local_size} ranks x max(torch_threads {torch_threads}, "
            f"env_threads {engine}) threads on {cores} cores; expect contention"
        )

    # --------------------------------------------------------- collectives
    def _collective(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except RuntimeError as e:
            raise DistributedError(
                f"rank {self.rank} of {self.size}: {what} failed ({_reason(e)}). Another rank has "
                "probably failed (its error is reported above); no checkpoint was written "
                "after this point"
            ) from None

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Replace every gradient by its mean over the ranks (one all-reduce)."""
        if self.size == 1:
            return
        params = list(parameters)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._collective("the gradient all-reduce", lambda: dist.all_reduce(flat))
        flat.div_(self.size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over the ranks."""
        if self.size == 1:
            return tensor
        out = tensor.detach().clone()
        self._collective("an all-reduce", lambda: dist.all_reduce(out))
        return out.div_(self.size)

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank."""
        if self.size == 1:
            return flag
        t = torch.tensor([int(flag)])
        self._collective("an all-reduce", lambda: dist.all_reduce(t, op=dist.ReduceOp.MAX))
        return bool(t.item())

    def all(self, flag: bool) -> bool:
        """True when ``flag`` is true on every rank."""
        return not self.any(not flag)

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order (picklable objects)."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        self._collective("gathering results", lambda: dist.all_gather_object(out, obj))
        return out

    def gather(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` on rank 0 (None elsewhere)."""
        if self.size == 1:
            return [obj]
        out: list[Any] | None = [None] * self.size if self.is_main else None
        self._collective("gathering state on rank 0", lambda: dist.gather_object(obj, out, dst=0))
        return out

    def broadcast(self, obj: T | None) -> T:
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj  # type: ignore[return-value]
        box = [obj]
        self._collective("a broadcast from rank 0", lambda: dist.broadcast_object_list(box, src=0))
        return box[0]  # type: ignore[return-value]

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's ``module``."""
        if self.size == 1:
            return
        tensors = list(module.state_dict().values())
        self._collective(
            "the parameter broadcast", lambda: [dist.broadcast(t, src=0) for t in tensors]
        )

    def on_main(self, fn: Callable[[], Any], scatter: bool = False) -> Any:
        """Run ``fn`` on rank 0 only and hand its result to every rank: the
        same object, or with ``scatter`` element r of the list it returns to
        rank r. An exception on rank 0 is raised there and, as ``RemoteError``,
        on the others."""
        if self.size == 1:
            result = fn()
            return result[0] if scatter else result
        if self.is_main:
            try:
                result = fn()
            except Exception as e:
                self._send(("error", [_picklable(e)] * self.size), scatter=True)
                raise
            payload = result if scatter else [result] * self.size
            return self._send(("ok", payload), scatter=True)[1]
        kind, value = self._send(None, scatter=True)
        if kind == "error":
            raise RemoteError(value)
        return value

    def _send(self, message: tuple[str, list[Any]] | None, scatter: bool) -> tuple[str, Any]:
        """Rank 0's ``(kind, per-rank values)``: every rank gets ``(kind, its value)``."""
        kind = self.broadcast(None if message is None else message[0])
        inputs = None if message is None else message[1]
        out: list[Any] = [None]
        self._collective(
            "a scatter from rank 0", lambda: dist.scatter_object_list(out, inputs, src=0)
        )
        return kind, out[0]


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 -- any unpicklable exception is sent as its message
        return RuntimeError(str(error))


def _reason(error: Exception) -> str:
    """The gist of a backend error: its first sentence, without the source location."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())
    return text.split(". ")[0].splitlines()[0] if text else type(error).__name__


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
