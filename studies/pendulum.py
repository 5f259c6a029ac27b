"""Pendulum-v1 PPO: pyenvpool's trainer against Stable-Baselines3 with the RL Zoo's tuned settings.

    python studies/pendulum.py [--seeds 1,2,3] [--eval-every 8192] [--episodes 100]
                               [--ours-steps N] [--sb3-steps 100000] [--threads 1]

Runs, interleaved seed by seed in this process (so both see the same machine
load), with ``--threads`` PyTorch threads each:

- **ours**: ``pyenvpool-train --task Pendulum-v1`` on its embedded default
  config (``trainer/configs/Pendulum-v1.yaml``), for its budget or
  ``--ours-steps`` env steps;
- **sb3**: ``stable_baselines3.PPO`` with the RL Zoo's hyperparameters for
  Pendulum-v1 (rl-baselines3-zoo ``hyperparams/ppo.yml``: 4 envs x 1024 steps,
  10 epochs of minibatches of 64, lr 1e-3, gamma 0.9, GAE lambda 0.95, clip
  0.2, no entropy bonus, gSDE resampled every 4 steps, the default 64x64 tanh
  MlpPolicy, a budget of 1e5 steps) on Gymnasium's own ``Pendulum-v1`` in a
  ``DummyVecEnv``, ``--sb3-steps`` env steps.

Both are evaluated greedily (the policy mean; SB3 ``deterministic=True``)
every ``--eval-every`` env steps on ``--episodes`` episodes of their own
task (ours on a pyenvpool evaluation pool, SB3 with ``evaluate_policy`` on
Gymnasium's env), and the evaluations' time is left out of the training time.
The script prints each run's learning curve (env steps, training seconds,
greedy mean return) and the first evaluation at or above -200 (the issue's
target), then a summary per method over the seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainer.config import resolve  # noqa: E402
from trainer.train import Trainer  # noqa: E402

TARGET = -200.0
ZOO = {  # rl-baselines3-zoo hyperparams/ppo.yml, Pendulum-v1 (HEAD 22e3ff2, 2026-04-23)
    "n_envs": 4,
    "n_steps": 1024,
    "gae_lambda": 0.95,
    "gamma": 0.9,
    "n_epochs": 10,
    "ent_coef": 0.0,
    "learning_rate": 1e-3,
    "clip_range": 0.2,
    "use_sde": True,
    "sde_sample_freq": 4,
}


def ours(seed: int, steps: int | None, eval_every: int, episodes: int, threads: int) -> list:
    """The embedded default, trained for ``steps`` (None: its budget):
    [(env_steps, train_s, return)]."""
    flags = {
        "task": "Pendulum-v1",
        "seed": seed,
        **({} if steps is None else {"total_steps": steps}),
        "eval_interval": eval_every,
        "eval_episodes": episodes,
        "eval_num_envs": min(episodes, 100),
        "torch_threads": threads,
        "checkpoint_interval": 0,
        "tensorboard": False,
        "plot": False,
        "console_interval": 1e9,
    }
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer.new(resolve(flags=flags), Path(tmp) / "run", progress=False)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the dashboard
                trainer.run()
        finally:
            trainer.close()
        lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [
        (e["env_steps"], e["train_time"], e["mean_return"])
        for e in events
        if e["category"] == "EVALUATOR"
    ]


def sb3(seed: int, steps: int, eval_every: int, episodes: int, threads: int) -> list[tuple]:
    """SB3 PPO with the RL Zoo settings on Gymnasium's Pendulum-v1."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(threads)
    env = make_vec_env("Pendulum-v1", n_envs=ZOO["n_envs"], seed=seed)
    eval_env = make_vec_env("Pendulum-v1", n_envs=min(episodes, 10), seed=10**6 + seed)
    params = {k: v for k, v in ZOO.items() if k != "n_envs"}
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **params)
    curve: list[tuple] = []

    class Evaluate(BaseCallback):
        """Greedy evaluations every ``eval_every`` env steps, timed out of training."""

        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.eval_seconds = 0.0
            self.next = eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                self.next += eval_every
                self.record()
            return True

        def record(self) -> None:
            tick = time.perf_counter()
            mean, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=episodes, deterministic=True
            )
            now = time.perf_counter()
            self.eval_seconds += now - tick
            curve.append((self.num_timesteps, tick - self.start - self.eval_seconds, float(mean)))

    callback = Evaluate()
    model.learn(total_timesteps=steps, callback=callback)
    if not curve or curve[-1][0] != model.num_timesteps:
        callback.record()
    env.close()
    eval_env.close()
    return curve


def first_hit(curve: list[tuple]) -> tuple | None:
    return next((point for point in curve if point[2] >= TARGET), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--eval-every", type=int, default=8192)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--ours-steps", type=int, default=None)
    ap.add_argument("--sb3-steps", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    hits: dict[str, list] = {"ours": [], "sb3": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, fn, steps in (("ours", ours, args.ours_steps), ("sb3", sb3, args.sb3_steps)):
            started = time.perf_counter()
            curve = fn(seed, steps, args.eval_every, args.episodes, args.threads)
            hit = first_hit(curve)
            hits[name].append(hit)
            print(f"\n{name} seed {seed} ({time.perf_counter() - started:.0f} s wall, with evals):")
            for env_steps, seconds, mean in curve:
                print(f"  {env_steps:>8,d} steps {seconds:7.1f} s  greedy return {mean:9.1f}")
            where = "never" if hit is None else f"at {hit[0]:,} steps, {hit[1]:.1f} s of training"
            print(f"  first >= {TARGET:.0f}: {where}", flush=True)
    print(f"\n== time to a greedy {args.episodes}-episode mean return >= {TARGET:.0f} ==")
    for name, found in hits.items():
        reached = [h for h in found if h is not None]
        line = f"{name:5s} reached in {len(reached)}/{len(found)} seeds"
        if reached:
            steps = statistics.median(h[0] for h in reached)
            seconds = statistics.median(h[1] for h in reached)
            line += f"; median {steps:,.0f} env steps, {seconds:.1f} s of training"
            line += " (per seed: " + ", ".join(f"{h[1]:.1f} s" for h in reached) + ")"
        print(line)


if __name__ == "__main__":
    main()
