"""SB3 PPO on CartPole-v1: pyenvpool.sb3 against Gymnasium's CartPole in DummyVecEnv.

    python bench/bench_sb3.py [--seeds 0,1,2] [--steps 50000] [--envs 8]
    python bench/bench_sb3.py --solve [--sides pyenvpool] [--seeds 0,1,...]

Both sides train Stable-Baselines3 PPO with the same hyperparameters (rl-zoo's
CartPole-v1 settings: 8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98,
GAE lambda 0.8, learning rate 1e-3 and clip range 0.2 decaying linearly over
the run), on one torch thread, in this process:

* ``pyenvpool``: ``pyenvpool.sb3.make_vec_env("CartPole-v1", n_envs=8)``;
* ``gymnasium``: ``stable_baselines3.common.env_util.make_vec_env("CartPole-v1",
  n_envs=8)``, SB3's default: a `DummyVecEnv` of Gymnasium's CartPole-v1,
  each in a `Monitor`.

By default every run trains for ``--steps`` env steps. With ``--solve`` a run
trains for up to 100 k steps (the schedules decay over 100 k) and stops once a
deterministic evaluation over 20 episodes reaches 475, checked whenever the
last 20 training episodes averaged 475: the procedure of
``tests/test_sb3.py::test_ppo_solves_cartpole``.

Runs alternate between the sides, seed by seed, with the order flipped every
seed, so machine load hits both alike. Each run prints the env steps it took,
the wall-clock time of ``learn`` (``learn_s``, evaluations included under
``--solve``), the process CPU time of it (``cpu_s``, steadier on a busy
machine), the wall-clock part spent inside the VecEnv (``env_s``: reset and
step), and the mean return of a fresh deterministic evaluation over 20
episodes; then the medians, and the median per-seed ratio of each time. The
sides draw different start states, so their learning differs run by run:
compare the times; the returns show that both learned.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import pyenvpool.sb3

SIDES = ("pyenvpool", "gymnasium")
SOLVE_BUDGET = 100_000
THRESHOLD = 475.0


# rl-zoo's CartPole-v1 PPO settings. SB3 decays the schedules over the
# total_timesteps given to learn().
HYPERPARAMETERS = dict(
    n_steps=32,
    batch_size=256,
    gae_lambda=0.8,
    gamma=0.98,
    n_epochs=20,
    ent_coef=0.0,
    learning_rate=lambda progress: 1e-3 * progress,
    clip_range=lambda progress: 0.2 * progress,
)


class TimedVecEnv(VecEnvWrapper):
    """Adds up the seconds spent inside the wrapped VecEnv's reset and step."""

    def __init__(self, venv: VecEnv):
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self):
        start = time.perf_counter()
        obs = self.venv.reset()
        self.seconds += time.perf_counter() - start
        return obs

    def step_async(self, actions):
        start = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - start

    def step_wait(self):
        start = time.perf_counter()
        result = self.venv.step_wait()
        self.seconds += time.perf_counter() - start
        return result


class StopWhenSolved(BaseCallback):
    """Stops training once a deterministic evaluation over 20 episodes reaches
    475, checked whenever the last 20 training episodes averaged 475."""

    def __init__(self, eval_env: VecEnv):
        super().__init__()
        self.eval_env = eval_env
        self.solved = False

    def _on_rollout_end(self) -> None:
        returns = [e["r"] for e in list(self.model.ep_info_buffer)[-20:]]
        if len(returns) == 20 and np.mean(returns) >= THRESHOLD:
            mean, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=20, deterministic=True, warn=False
            )
            self.solved = mean >= THRESHOLD

    def _on_step(self) -> bool:
        return not self.solved


def make_venv(side: str, n_envs: int, seed: int) -> VecEnv:
    if side == "pyenvpool":
        return pyenvpool.sb3.make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    return sb3_make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)


def run(side: str, seed: int, steps: int, n_envs: int, solve: bool) -> dict:
    venv = TimedVecEnv(make_venv(side, n_envs, seed))
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", **HYPERPARAMETERS)
    callback = StopWhenSolved(make_venv(side, 4, 1_000 + seed)) if solve else None
    start, start_cpu = time.perf_counter(), time.process_time()
    model.learn(SOLVE_BUDGET if solve else steps, callback=callback)
    learn_s = time.perf_counter() - start
    cpu_s = time.process_time() - start_cpu
    eval_env = make_venv(side, 4, 10_000 + seed)
    mean_return, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=20, deterministic=True, warn=False
    )
    for env in (venv, eval_env, *([callback.eval_env] if solve else [])):
        env.close()
    return {
        "steps": model.num_timesteps,
        "learn_s": learn_s,
        "cpu_s": cpu_s,
        "env_s": venv.seconds,
        "return": mean_return,
    }


def row(label: str, r: dict) -> str:
    return (
        f"{label:<16} {r['steps']:>7.0f} {r['learn_s']:8.1f} {r['cpu_s']:7.1f}"
        f" {r['env_s']:7.2f} {r['return']:11.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated PPO seeds")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per run")
    parser.add_argument("--envs", type=int, default=8, help="envs per VecEnv")
    parser.add_argument("--solve", action="store_true", help="train until 475 (see above)")
    parser.add_argument("--sides", default=",".join(SIDES), help="pyenvpool and/or gymnasium")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    sides = [s for s in args.sides.split(",") if s]
    if not set(sides) <= set(SIDES):
        parser.error(f"--sides takes {', '.join(SIDES)}")
    budget = f"until {THRESHOLD:.0f} (at most {SOLVE_BUDGET})" if args.solve else args.steps
    print(f"SB3 PPO, CartPole-v1, {args.envs} envs, {budget} steps per run, 1 torch thread")
    header = ("seed side", "steps", "learn_s", "cpu_s", "env_s", "eval return")
    print("{:<16} {:>7} {:>8} {:>7} {:>7} {:>11}".format(*header))
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for k, seed in enumerate(seeds):
        for side in sides if k % 2 == 0 else sides[::-1]:
            r = run(side, seed, args.steps, args.envs, args.solve)
            results[side].append(r)
            print(row(f"{seed:>4} {side}", r), flush=True)
    print("medians:")
    for side in sides:
        runs = results[side]
        print(row(f"     {side}", {k: statistics.median(r[k] for r in runs) for k in runs[0]}))
    if len(sides) == 2:
        for key in ("learn_s", "cpu_s", "env_s"):
            ratios = [a[key] / b[key] for a, b in zip(*results.values())]
            print(
                f"{key} {sides[0]} / {sides[1]}: median {np.median(ratios):.2f} (per seed "
                + ", ".join(f"{x:.2f}" for x in ratios)
                + ")"
            )


if __name__ == "__main__":
    main()
