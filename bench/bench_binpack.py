"""BinPack step throughput: pyenvpool BinPack-v0 vs EnvPool's BinPack-v2 port vs
jitted, vmapped Jumanji BinPack-v2 (with auto-reset).

Every implementation plays uniform random valid actions (drawn from its own
action mask, outside the timer); only the step call is timed. Rounds interleave
the implementations so that machine noise hits all of them alike; the table
shows the median time per step call. Also reported: resets/s and the bytes a
snapshot of one env costs.

    python bench/bench_binpack.py                      # 256 and 4096 envs, ~1-2 min
    python bench/bench_binpack.py --num-envs 1024 --no-jumanji

Note: EnvPool 1.2.5's BinPack-v2 is not Jumanji's: it generates 2 items per
instance (episodes last ~3 steps) and adds a 20-step limit, so each of its
steps does far less work than a Jumanji (or pyenvpool) step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import pyenvpool


def random_valid(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """One uniformly random valid flat action per row of a [N, A] bool mask."""
    scores = rng.integers(1, 1 << 15, size=mask.shape, dtype=np.int16)
    return np.where(mask, scores, 0).argmax(1)


class Runner:
    """One implementation. `measure` times only `step`; `actions` (random valid
    actions from the current mask) and `check` run outside the timer."""

    name: str
    num_envs: int

    def actions(self) -> np.ndarray:
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> None:
        raise NotImplementedError

    def check(self) -> None:
        pass

    def reset(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PyEnvPool(Runner):
    name = "pyenvpool BinPack-v0"

    def __init__(self, num_envs: int, num_threads: int, seed: int) -> None:
        self.num_envs = num_envs
        self.pool = pyenvpool.make("BinPack-v0", num_envs, num_threads=num_threads, seed=seed)
        self.obs, _ = self.pool.reset()  # views: every step rewrites them in place
        self.rng = np.random.default_rng(seed)
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def actions(self) -> np.ndarray:
        return random_valid(self.rng, self.obs["action_mask"]).astype(np.int32)

    def step(self, actions: np.ndarray) -> None:
        self.result = self.pool.step(actions)

    def check(self) -> None:
        # Dense reward in (0, 1] (valid actions only), no time limit.
        _, reward, terminated, truncated, info = self.result
        assert ((reward > 0) & (reward <= 1)).all() and not truncated.any()
        self.returns += list(info["episode_return"][terminated])
        self.lengths += list(info["episode_length"][terminated])

    def reset(self) -> None:
        self.pool.reset()

    def close(self) -> None:
        self.pool.close()


class EnvPool(Runner):
    name = "EnvPool BinPack-v2"

    def __init__(self, num_envs: int, num_threads: int, seed: int) -> None:
        import envpool

        self.num_envs = num_envs
        self.env = envpool.make_gymnasium(
            "BinPack-v2", num_envs=num_envs, batch_size=num_envs, num_threads=num_threads, seed=seed
        )
        self.obs, _ = self.env.reset()
        self.rng = np.random.default_rng(seed)
        self.items = self.obs["action_mask"].shape[-1]

    def actions(self) -> np.ndarray:
        flat = random_valid(self.rng, self.obs["action_mask"].reshape(self.num_envs, -1))
        return np.stack([flat // self.items, flat % self.items], -1).astype(np.int32)

    def step(self, actions: np.ndarray) -> None:
        self.obs, *_ = self.env.step(actions)

    def reset(self) -> None:
        self.obs, _ = self.env.reset()

    def close(self) -> None:
        self.env.close()


class Jumanji(Runner):
    name = "Jumanji (jit+vmap)"

    def __init__(self, num_envs: int, num_threads: int, seed: int) -> None:
        import jax
        import jumanji
        from jumanji.wrappers import VmapAutoResetWrapper

        self.jax = jax
        self.num_envs = num_envs
        env = VmapAutoResetWrapper(jumanji.make("BinPack-v2"))
        self.items = int(env.action_spec.num_values[1])
        self.reset_fn = jax.jit(env.reset)
        self.step_fn = jax.jit(env.step)
        self.key = jax.random.PRNGKey(seed)
        self.rng = np.random.default_rng(seed)
        self.reset()
        self.step(self.actions())  # compile

    def actions(self):
        mask = np.asarray(self.timestep.observation.action_mask).reshape(self.num_envs, -1)
        flat = random_valid(self.rng, mask)
        actions = np.stack([flat // self.items, flat % self.items], -1).astype(np.int32)
        return self.jax.device_put(actions)

    def step(self, actions) -> None:
        self.state, self.timestep = self.jax.block_until_ready(self.step_fn(self.state, actions))

    def reset(self) -> None:
        self.key, key = self.jax.random.split(self.key)
        out = self.reset_fn(self.jax.random.split(key, self.num_envs))
        self.state, self.timestep = self.jax.block_until_ready(out)


def measure(runners: list[Runner], rounds: int, calls: Callable[[Runner], int]):
    """Median seconds per step call and per reset, interleaved round by round."""
    step_times: dict[str, list[float]] = {r.name: [] for r in runners}
    reset_times: dict[str, list[float]] = {r.name: [] for r in runners}

    def timed(call, *args) -> float:
        start = time.perf_counter()
        call(*args)
        return time.perf_counter() - start

    for runner in runners:  # warm-up: first episodes, caches, thread start
        for _ in range(min(3, calls(runner))):
            runner.step(runner.actions())
    for _ in range(rounds):
        for runner in runners:
            for _ in range(calls(runner)):
                step_times[runner.name].append(timed(runner.step, runner.actions()))
                runner.check()
            reset_times[runner.name].append(timed(runner.reset))
    return (
        {k: statistics.median(v) for k, v in step_times.items()},
        {k: statistics.median(v) for k, v in reset_times.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--num-threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="pyenvpool step calls per round")
    parser.add_argument(
        "--peer-steps",
        type=int,
        default=16_384,
        help="env steps per round for EnvPool and Jumanji (they are slow)",
    )
    parser.add_argument("--no-jumanji", action="store_true")
    parser.add_argument("--no-envpool", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    kinds: list[type[Runner]] = [PyEnvPool]
    if not args.no_envpool:
        kinds.append(EnvPool)
    if not args.no_jumanji:
        kinds.append(Jumanji)

    print(
        f"BinPack throughput: random valid actions, step call only, {args.num_threads} threads, "
        f"median of {args.rounds} interleaved rounds"
    )
    header = f"{'envs':>6}  {'implementation':<22}{'steps/s':>12}{'resets/s':>12}{'x EnvPool':>11}"
    header += f"{'x Jumanji':>11}"
    print(header)
    for num_envs in args.num_envs:
        runners = [k(num_envs, args.num_threads, args.seed) for k in kinds]

        def calls(runner: Runner, n: int = num_envs) -> int:
            return args.calls if isinstance(runner, PyEnvPool) else max(3, args.peer_steps // n)

        step_s, reset_s = measure(runners, args.rounds, calls)
        rate = {name: num_envs / t for name, t in step_s.items()}
        for runner in runners:
            name = runner.name
            row = f"{num_envs:>6}  {name:<22}{rate[name]:>12,.0f}{num_envs / reset_s[name]:>12,.0f}"
            for base in (EnvPool.name, Jumanji.name):
                row += f"{rate[name] / rate[base]:>10.1f}x" if base in rate else f"{'-':>11}"
            print(row)
        ours = runners[0]
        assert isinstance(ours, PyEnvPool)
        if len(ours.returns) > 100:  # check the results, not just the speed
            mean_return = float(np.mean(ours.returns))
            print(
                f"{'':>8}pyenvpool: {len(ours.returns)} episodes, mean return {mean_return:.3f} "
                f"(Jumanji random policy: 0.573), mean length {np.mean(ours.lengths):.1f}"
            )
            assert 0.5 < mean_return < 0.65, mean_return
        for runner in runners:
            runner.close()

    with pyenvpool.make("BinPack-v0", 1) as pool:
        print(f"snapshot bytes per env (pyenvpool state record): {pool.state_bytes}")
    if not args.no_jumanji:
        import jax
        import jumanji

        state, _ = jax.jit(jumanji.make("BinPack-v2").reset)(jax.random.PRNGKey(0))
        nbytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state))
        print(f"Jumanji BinPack-v2 State pytree bytes per env: {nbytes}")


def test_step_throughput(benchmark) -> None:
    """pytest-benchmark entry: one step call of 4096 envs, random valid actions
    (picked outside the timer)."""
    runner = PyEnvPool(4096, len(os.sched_getaffinity(0)), 0)
    benchmark.pedantic(runner.step, setup=lambda: ((runner.actions(),), {}), rounds=100)
    runner.check()
    runner.close()


if __name__ == "__main__":
    main()
