"""MuJoCo PPO against the wall clock: pyenvpool's trainer against Stable-Baselines3
with the RL Zoo's tuned settings.

    python studies/mujoco_vs_sb3.py [--task HalfCheetah-v5] [--seed 1] [--budget 1800]
                                    [--episodes 10] [--sb3-eval-every 20000] [--out FILE]
                                    [--run {both,ours,sb3,none}] [--from FILE ...]
                                    [--config FILE] [--across-seeds [--plot PNG]]
                                    [--check K]

Runs one after the other on the same machine, each for ``--budget`` seconds:

- **ours**: ``pyenvpool-train --task HalfCheetah-v5`` on its embedded default
  config (``trainer/configs/HalfCheetah-v5.yaml``) in a subprocess, stopped
  with Ctrl-C after ``--budget`` seconds of wall clock (it finishes its
  update and saves). Its curve is the trainer's own greedy evaluations
  (``--episodes`` episodes of the policy mean on a separate pool) against the
  run's wall clock, evaluations and start-up included. ``--config FILE``
  trains the default with that YAML overlay instead (the trainer's
  ``--config``), to try a change at full length.
- **sb3**: ``stable_baselines3.PPO`` with the RL Zoo's tuned hyperparameters
  for HalfCheetah (rl-baselines3-zoo ``hyperparams/ppo.yml``, HalfCheetah-v4:
  one env, ``VecNormalize`` of observations and rewards, 512 steps per update,
  20 epochs of minibatches of 64, lr 2.0633e-05, gamma 0.98, GAE lambda 0.92,
  clip 0.1, entropy 0.000401762, vf 0.58096, max grad norm 0.8, 256x256 ReLU
  actor and critic, log-std from -2, no orthogonal init) on Gymnasium's own
  ``HalfCheetah-v5``, one PyTorch thread. Every ``--sb3-eval-every`` env steps
  it is evaluated greedily (``deterministic=True``) on ``--episodes``
  episodes with the training run's observation statistics, and the
  evaluations' time is left out of its clock: its curve is against its
  training time only, which favours SB3. It stops when that reaches
  ``--budget``.

It prints both curves, then the greedy return of each side at ten common
times and at every evaluation time of either side (the last evaluation of each
at or before it), and which side is ahead. ``--out`` writes the curves as
JSON. ``--run ours`` (or ``sb3``) runs one side only, and ``--from FILE``
takes the curves of the sides not run from earlier ``--out`` files of the
same task, seed and budget. Two one-sided runs started at once, one per core,
give a pair measured side by side at the same time in 30 minutes instead of
60 (each runs under the other's load), and ``--run none --from A B`` compares them.

``--run none --across-seeds --from FILE ...`` compares the mean over seeds
instead: the files hold both sides' curves of several seeds (of the same task
and budget), each side's curve at a time is the mean over its seeds of each
seed's last evaluation at or before it, and the two means are compared at
every evaluation time of any curve, from the first time at which every seed
of both sides has evaluated. ``--plot PNG`` draws both means and each seed's
curve against the wall clock.

``--check K`` retrains the first ``K`` evaluations of seed ``--seed`` with
today's code and compares them with the stored curve of ours
(``studies/data/<task>/ours-seedS.json``): the trainer is deterministic for a
seed, so the returns must be the same bit for bit (the times may differ).
The tests run it with ``K = 2``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results import compare_prefix, evaluations
from train_tasks import run

ZOO = {  # rl-baselines3-zoo hyperparams/ppo.yml, HalfCheetah-v4 (the v3 entry before it)
    "n_steps": 512,
    "batch_size": 64,
    "gamma": 0.98,
    "learning_rate": 2.0633e-05,
    "ent_coef": 0.000401762,
    "clip_range": 0.1,
    "n_epochs": 20,
    "gae_lambda": 0.92,
    "max_grad_norm": 0.8,
    "vf_coef": 0.58096,
}


def ours(
    task: str, seed: int, budget: float, episodes: int, config: Path | None = None
) -> list[tuple]:
    """[(env_steps, wall_s, greedy mean return)] of the embedded default, or of
    the default with the YAML overlay ``config`` (the trainer's ``--config``)."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        extra = ["--eval-episodes", str(episodes), "--eval-num-envs", str(episodes)]
        if config is not None:
            extra += ["--config", str(config.resolve())]
        run(task, seed, budget, run_dir, extra)
        return [(e["env_steps"], e["wall_time"], e["mean_return"]) for e in evaluations(run_dir)]


def sb3(task: str, seed: int, budget: float, episodes: int, eval_every: int) -> list[tuple]:
    """[(env_steps, training s, greedy mean return)] of SB3 PPO with the zoo's settings."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env(task, n_envs=1, seed=seed), gamma=ZOO["gamma"])
    eval_env = VecNormalize(
        make_vec_env(task, n_envs=episodes, seed=10**6 + seed), training=False, norm_reward=False
    )
    policy_kwargs = {
        "log_std_init": -2,
        "ortho_init": False,
        "activation_fn": torch.nn.ReLU,
        "net_arch": {"pi": [256, 256], "vf": [256, 256]},
    }
    model = PPO(
        "MlpPolicy", env, seed=seed, device="cpu", verbose=0, policy_kwargs=policy_kwargs, **ZOO
    )
    curve: list[tuple] = []

    class Clock(BaseCallback):
        """Greedy evaluations every ``eval_every`` steps, timed out of training;
        stops learning when the training time reaches ``budget``."""

        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.eval_seconds = 0.0
            self.next = eval_every

        def training_seconds(self) -> float:
            return time.perf_counter() - self.start - self.eval_seconds

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                self.next += eval_every
                self.record()
            return self.training_seconds() < budget

        def record(self) -> None:
            seconds = self.training_seconds()
            tick = time.perf_counter()
            eval_env.obs_rms = env.obs_rms.copy()
            mean, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=episodes, deterministic=True
            )
            self.eval_seconds += time.perf_counter() - tick
            curve.append((self.num_timesteps, seconds, float(mean)))

    clock = Clock()
    model.learn(total_timesteps=10**9, callback=clock)
    clock.record()
    env.close()
    eval_env.close()
    return curve


def at(curve: list[tuple], seconds: float) -> float | None:
    """The last evaluation at or before ``seconds``."""
    before = [point[2] for point in curve if point[1] <= seconds]
    return before[-1] if before else None


def report(pairs: list[tuple], where: str) -> None:
    """How many of the (seconds, ours, sb3) ``pairs`` ours is ahead at, by how
    much, and each time it is not."""
    behind = [pair for pair in pairs if pair[1] <= pair[2]]
    print(f"{where}: ours ahead at {len(pairs) - len(behind)} of {len(pairs)}")
    margins = [a - b for _, a, b in pairs]
    print(f"  ours minus sb3: smallest {min(margins):,.0f}, median {np.median(margins):,.0f}")
    for seconds, a, b in behind:
        print(f"  behind at {seconds:7.1f} s: ours {a:9.1f}, sb3 {b:9.1f}")


def across_seeds(sources: list[Path], task: str, budget: float, plot: Path | None) -> None:
    """Print the mean over seeds of each side's curve, and where ours is ahead."""
    curves: dict[str, dict[int, list[tuple]]] = {"ours": {}, "sb3": {}}
    for source in sources:
        stored = json.loads(source.read_text())
        if (stored["args"]["task"], stored["args"]["budget"]) != (task, budget):
            raise SystemExit(f"{source} is of another task or budget: {stored['args']}")
        for side in curves:
            if side in stored:
                curves[side][stored["args"]["seed"]] = [tuple(point) for point in stored[side]]
    seeds = sorted(curves["ours"])
    if not seeds or sorted(curves["sb3"]) != seeds:
        raise SystemExit(
            f"--across-seeds needs both sides of the same seeds: ours {seeds},"
            f" sb3 {sorted(curves['sb3'])}"
        )
    print(f"seeds {seeds}")

    def mean(side: str, seconds: float) -> float | None:
        values = [at(curves[side][seed], seconds) for seed in seeds]
        return None if None in values else float(np.mean(values))

    columns = [f"seed {seed}: {side}" for seed in seeds for side in ("ours", "sb3")]
    columns += ["mean: ours", "mean: sb3"]
    print("\n| seconds | " + " | ".join(columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for seconds in np.linspace(budget / 10, budget, 10):
        cells = [at(curves[side][seed], seconds) for seed in seeds for side in ("ours", "sb3")]
        cells += [mean("ours", seconds), mean("sb3", seconds)]
        shown = ["-" if v is None else f"{v:,.0f}" for v in cells]
        print(f"| {seconds:.0f} | " + " | ".join(shown) + " |")
    times = sorted({p[1] for side in curves.values() for curve in side.values() for p in curve})
    pairs = [(t, mean("ours", t), mean("sb3", t)) for t in times]
    both = [pair for pair in pairs if None not in pair]
    if not both:
        raise SystemExit("no time at which every seed of both sides has evaluated")
    report(
        both,
        f"\nmean over {len(seeds)} seeds, at every evaluation time of any curve"
        f" from {both[0][0]:.0f} s",
    )
    if plot is not None:
        draw(curves, [pair[0] for pair in both], mean, task, plot)


def draw(curves: dict, times: list[float], mean, task: str, path: Path) -> None:
    """Each side's mean over seeds (thick) and its seeds' curves (thin), as
    steps: each evaluation's return holds until the side's next one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for side, color, label in (
        ("ours", "tab:blue", "pyenvpool PPO"),
        ("sb3", "tab:red", "SB3 PPO"),
    ):
        for curve in curves[side].values():
            ax.step(
                [p[1] for p in curve],
                [p[2] for p in curve],
                where="post",
                color=color,
                alpha=0.25,
                linewidth=0.8,
            )
        ax.step(
            times,
            [mean(side, t) for t in times],
            where="post",
            color=color,
            linewidth=2,
            label=f"{label}, mean of {len(curves[side])} seeds",
        )
    ax.set_xlabel("wall-clock seconds (SB3: training time only)")
    ax.set_ylabel("greedy return (10 episodes)")
    ax.set_title(f"{task}: PPO against the wall clock, 2-core CPU")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


DATA = Path(__file__).resolve().parent / "data"


def check(task: str, seed: int, count: int) -> int:
    """Train ``seed`` in-process up to its ``count``-th evaluation and compare
    each (env steps, greedy return) with the stored curve of ours."""
    from trainer.config import resolve
    from trainer.train import Trainer

    stored = json.loads((DATA / task / f"ours-seed{seed}.json").read_text())
    want = [(steps, mean) for steps, _, mean in stored["ours"][:count]]
    flags = {"task": task, "seed": seed, "eval_episodes": stored["args"]["episodes"]}
    config = resolve(flags={**flags, "eval_num_envs": stored["args"]["episodes"]})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer.new(config, Path(tmp) / "run", progress=False)
        try:
            trainer.run(max_updates=-(-want[-1][0] // trainer.batch_size))
        finally:
            trainer.close()
        got = [(e["env_steps"], e["mean_return"]) for e in evaluations(Path(tmp) / "run")]
    return compare_prefix(f"seed {seed}", want, got, "the stored curve")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--task", default="HalfCheetah-v5")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds per side")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--sb3-eval-every", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--config", type=Path, default=None, help="ours: a YAML overlay on the embedded default"
    )
    ap.add_argument("--run", choices=["both", "ours", "sb3", "none"], default="both")
    ap.add_argument(
        "--from",
        dest="sources",
        type=Path,
        nargs="*",
        default=[],
        help="earlier --out files with the curves of the sides not run",
    )
    ap.add_argument(
        "--across-seeds",
        action="store_true",
        help="with --run none: compare the mean over the seeds of the --from files",
    )
    ap.add_argument(
        "--plot", type=Path, default=None, help="with --across-seeds: a PNG of the curves"
    )
    ap.add_argument(
        "--check",
        type=int,
        metavar="K",
        default=None,
        help="retrain the first K evaluations of --seed and compare them with the stored curve",
    )
    args = ap.parse_args()
    if args.check is not None:
        raise SystemExit(check(args.task, args.seed, args.check))
    if args.plot is not None and not args.across_seeds:
        ap.error("--plot draws the mean over seeds: add --across-seeds")
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    if args.across_seeds:
        if args.run != "none":
            raise SystemExit("--across-seeds compares stored curves only: add --run none")
        across_seeds(args.sources, args.task, args.budget, args.plot)
        return
    curves: dict[str, list[tuple]] = {}
    for source in args.sources:
        stored = json.loads(source.read_text())
        same = ("task", "seed", "budget")
        if any(stored["args"][key] != getattr(args, key) for key in same):
            raise SystemExit(f"{source} is of another task, seed or budget: {stored['args']}")
        for side in ("ours", "sb3"):
            if side in stored:
                curves[side] = [tuple(point) for point in stored[side]]
                print(f"{side}: the curve of {source}", flush=True)
    if args.run in ("both", "ours"):
        curves["ours"] = ours(args.task, args.seed, args.budget, args.episodes, args.config)
    if args.run in ("both", "sb3"):
        curves["sb3"] = sb3(args.task, args.seed, args.budget, args.episodes, args.sb3_eval_every)
    if args.out:
        # default=str: the path arguments (out, sources, config) as strings.
        args.out.write_text(json.dumps({"args": vars(args), **curves}, default=str))
    empty = [name for name, curve in curves.items() if not curve]
    if empty:
        raise SystemExit(f"no evaluation within the budget: {', '.join(empty)}")
    for name, curve in curves.items():
        print(f"\n{name} ({len(curve)} evaluations):")
        for env_steps, seconds, mean in curve:
            print(f"  {env_steps:>10,d} steps {seconds:7.1f} s  greedy return {mean:9.1f}")
    for name, curve in curves.items():
        late = [point[2] for point in curve if point[1] > args.budget * 5 / 6] or [float("nan")]
        steps_per_s = curve[-1][0] / curve[-1][1]
        print(
            f"{name}: best {max(p[2] for p in curve):.0f}, median of the last sixth of the"
            f" budget {np.median(late):.0f}, {steps_per_s:.0f} env steps/s"
        )
    if len(curves) < 2:
        return
    print("\n| seconds | ours | sb3 | ahead |")
    print("|---:|---:|---:|---|")
    ahead = []
    for seconds in np.linspace(args.budget / 10, args.budget, 10):
        a, b = at(curves["ours"], seconds), at(curves["sb3"], seconds)
        side = "-" if a is None or b is None else ("ours" if a > b else "sb3")
        ahead.append(side)
        show = ["-" if v is None else f"{v:.0f}" for v in (a, b)]
        print(f"| {seconds:.0f} | {show[0]} | {show[1]} | {side} |")
    print(f"\nours ahead at {ahead.count('ours')} of {len(ahead)} points", flush=True)
    times = sorted({point[1] for curve in curves.values() for point in curve})
    pairs = [(t, at(curves["ours"], t), at(curves["sb3"], t)) for t in times]
    report([pair for pair in pairs if None not in pair], "at every evaluation time of either")


if __name__ == "__main__":
    main()
