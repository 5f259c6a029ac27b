"""Maze-v0 throughput: pyenvpool vs EnvPool's Maze-v0 vs Jumanji (jit + vmap).

    python bench/bench_maze.py [--envs 256 4096] [--threads 2] [--rounds 5] [--seconds 0.4]

Every engine steps with uniformly random actions (about half of them wall
bumps) and auto-resets finished episodes; only the step call is timed. The
engines run in the same process, interleaved round by round, so machine noise
hits them alike; the script prints median steps/s and ratios, then resets/s
and the snapshot size per env. Each runner counts finished episodes and a
timed run of 100+ steps must finish one per env (time limit 100), so a broken
engine cannot look fast.

Jumanji runs with its recommended auto-reset, `VmapWrapper(AutoResetWrapper(env))`,
one jitted `step` call per batch step, as a Python training loop drives it.
Its bare step kernel without any reset, 64 steps fused per `lax.scan` call,
is shown as a bound on what JAX could reach.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pyenvpool

ACTION_BATCHES = 64


def make_runners(num_envs: int, num_threads: int) -> dict:
    """name -> run(k): k batch steps; returns the number of episodes that ended."""
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (ACTION_BATCHES, num_envs)).astype(np.int32)
    runners = {}

    pool = pyenvpool.make("Maze-v0", num_envs, num_threads=num_threads, seed=0)
    pool.reset()

    def run_pyenvpool(k):
        ended = 0
        for t in range(k):
            _, _, terminated, truncated, _ = pool.step(actions[t % ACTION_BATCHES])
            ended += np.count_nonzero(terminated | truncated)
        return ended

    runners["pyenvpool"] = run_pyenvpool

    try:
        import envpool
    except ImportError:
        print("envpool not installed; skipping it")
    else:
        # EnvPool's own Maze-v0 port (its generator differs: random walls,
        # agent (0, 0), target (9, 9)). Its Gymnasium class for Jumanji tasks
        # also caches every env's output in Python for rendering on every
        # step; its dm_env class does not, so both are measured.
        for api in ("gymnasium", "dm"):
            runners[f"envpool ({api})"] = _envpool_runner(
                envpool, api, num_envs, num_threads, actions
            )

    try:
        import jax
        import jumanji
        from jumanji.wrappers import AutoResetWrapper, VmapWrapper
    except ImportError:
        print("jumanji not installed; skipping it")
    else:
        maze = jumanji.make("Maze-v0")
        keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
        jax_actions = jax.numpy.asarray(actions)
        # Jumanji's recommended auto-reset. Under vmap its lax.cond becomes a
        # select, so the maze generator runs for every env on every step.
        auto = VmapWrapper(AutoResetWrapper(maze))
        runners["jumanji jit step"] = _jax_runner(
            auto.step, auto.reset(keys)[0], jax_actions, False
        )
        # The bare step kernel with no reset at all (finished episodes keep
        # stepping), 64 steps per lax.scan call, observations kept as a rollout
        # would keep them: a bound on JAX, not a usable RL loop.
        raw_state = jax.vmap(maze.reset)(keys)[0]
        runners["jumanji scan x64, no reset"] = _jax_runner(
            jax.vmap(maze.step), raw_state, jax_actions, True
        )
    return runners


def _envpool_runner(envpool, api: str, num_envs: int, num_threads: int, actions):
    if api == "gymnasium":
        env = envpool.make_gymnasium("Maze-v0", num_envs=num_envs, num_threads=num_threads)
        env.reset()

        def run(k):
            ended = 0
            for t in range(k):
                _, _, terminated, truncated, _ = env.step(actions[t % ACTION_BATCHES])
                ended += np.count_nonzero(terminated | truncated)
            return ended

    else:
        env = envpool.make_dm("Maze-v0", num_envs=num_envs, num_threads=num_threads)
        env.reset()

        def run(k):
            ended = 0
            for t in range(k):
                ts = env.step(actions[t % ACTION_BATCHES])
                ended += np.count_nonzero(ts.step_type == 2)  # StepType.LAST
            return ended

    return run


def _jax_runner(step, state, actions, fused: bool):
    """One jitted call per batch step, or ACTION_BATCHES steps per lax.scan call."""
    import jax

    holder = {"state": state}
    if fused:

        def body(s, a):
            s, ts = step(s, a)
            return s, ts

        scan = jax.jit(lambda s, acts: jax.lax.scan(body, s, acts))

        def run(k):
            s, ended = holder["state"], []
            for _ in range(max(1, k // ACTION_BATCHES)):
                s, ts = scan(s, actions)
                ended.append(ts.last().sum())
            holder["state"] = s
            return int(sum(int(e) for e in ended))  # waits for the device

    else:
        jit_step = jax.jit(step)

        def run(k):
            s, ended = holder["state"], []
            for t in range(k):
                s, ts = jit_step(s, actions[t % ACTION_BATCHES])
                ended.append(ts.last().sum())
            holder["state"] = s
            return int(sum(int(e) for e in ended))

    return run


def steps_per_call(name: str, k: int) -> int:
    return max(1, k // ACTION_BATCHES) * ACTION_BATCHES if "scan" in name else k


def calibrate(name: str, run, seconds: float) -> int:
    k = ACTION_BATCHES if "scan" in name else 1
    run(k)  # compile / warm up
    while True:
        start = time.perf_counter()
        run(k)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 4:
            return max(1, int(k * seconds / elapsed))
        k *= 2


def measure_steps(num_envs: int, num_threads: int, rounds: int, seconds: float) -> dict:
    """Median env steps per second of each engine."""
    runners = make_runners(num_envs, num_threads)
    counts = {name: calibrate(name, run, seconds) for name, run in runners.items()}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            ended = run(counts[name])
            elapsed = time.perf_counter() - start
            per_env = steps_per_call(name, counts[name])
            # Time limit 100: in 100 consecutive steps every env ends an episode.
            assert per_env < 100 or ended >= num_envs, f"{name}: only {ended} episodes ended"
            samples[name].append(per_env * num_envs / elapsed)
    return {name: float(np.median(s)) for name, s in samples.items()}


def measure_resets(num_envs: int, num_threads: int, rounds: int) -> dict:
    """Median full-batch resets per second (env resets, not calls)."""
    results = {}
    pool = pyenvpool.make("Maze-v0", num_envs, num_threads=num_threads)
    results["pyenvpool"] = _median_rate(lambda: pool.reset(), num_envs, rounds)
    pool.close()
    try:
        import jax
        import jumanji
    except ImportError:
        return results
    reset = jax.jit(jax.vmap(jumanji.make("Maze-v0").reset))
    keys = jax.random.split(jax.random.PRNGKey(1), num_envs)
    results["jumanji jit+vmap"] = _median_rate(
        lambda: jax.block_until_ready(reset(keys)), num_envs, rounds
    )
    return results


def _median_rate(fn, per_call: int, rounds: int) -> float:
    fn()
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        rates.append(per_call / (time.perf_counter() - start))
    return float(np.median(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()

    for num_envs in args.envs:
        steps = measure_steps(num_envs, args.threads, args.rounds, args.seconds)
        print(
            f"\nMaze-v0 step, {num_envs} envs, {args.threads} threads, "
            f"median of {args.rounds} rounds"
        )
        print("| engine | steps/s | pyenvpool is |")
        print("|---|---:|---:|")
        for name, v in steps.items():
            print(f"| {name} | {v / 1e6:.3f} M | {steps['pyenvpool'] / v:.1f}x |")

    num_envs = max(args.envs)
    resets = measure_resets(num_envs, args.threads, args.rounds)
    print(f"\nMaze-v0 reset (new random maze), {num_envs} envs per call")
    print("| engine | resets/s |")
    print("|---|---:|")
    for name, v in resets.items():
        print(f"| {name} | {v / 1e6:.3f} M |")

    with pyenvpool.make("Maze-v0", 64, num_threads=1) as pool:
        ids = pool.snapshot()
        assert pool.snapshot_bytes == len(ids) * pool.state_bytes
        print(f"\nSnapshot: {pool.state_bytes} bytes per env state (pool.state_bytes)")


if __name__ == "__main__":
    main()
