"""SPO against PPO at equal env steps and equal wall clock, and search throughput.

    python studies/spo_vs_ppo.py [--task Maze-v0] [--spo-steps 30720] [--eval-every 10240]
                              [--eval-episodes 200] [--seed 1] [--threads 1] [--skip-train]
                              [--fork CKPT] [--spo-config FILE]
                              [--eval-particles N] [--eval-depth D]

Two parts, all in this process, with ``--threads`` PyTorch and engine threads:

1. **Search throughput.** ``smc_search`` with the task's SPO defaults (16
   particles x depth 4, the embedded ``<task>.spo.yaml``) from every training
   env, on a freshly initialised network: simulated env steps per second
   (B*N*D per search over the time spent in ``snapshot``/``simulate``/
   ``release``) and per second of the whole search, and the engine vs network
   share of the search time; with and without running the network once per
   distinct particle observation (``dedupe_particles``).
2. **Learning.** Three runs from the task's embedded defaults (only the budget
   and evaluation settings changed):

   - ``spo``: SPO for ``--spo-steps`` env steps;
   - ``ppo-steps``: PPO for the same env steps (rounded up to whole updates);
   - ``ppo-wall``: PPO for the same *training* wall time as ``spo``.

   Each is evaluated at the end on ``--eval-episodes`` held-out episodes,
   greedily on the raw policy and (SPO only) with the search, and the
   evaluation history along the way is printed as the learning curve. The
   ``untrained`` row evaluates a freshly initialised network the same way, to
   separate what the search adds by itself from what was learned.

   With ``--fork CKPT`` all three runs start from that checkpoint's network
   (e.g. a PPO run's best): SPO fine-tuning against PPO continuing, at equal
   env steps and equal training time. The ``start`` row then evaluates the
   checkpoint itself, greedy and with the search, and part 1 is skipped.
   ``--spo-config FILE`` is applied over the SPO run's config (``--config``
   of ``pyenvpool-train``).

Final evaluations play ``--eval-episodes`` held-out episodes, one per
evaluation env (so 1000 are the PPO protocol's 1,000 BinPack instances);
``--eval-particles``/``--eval-depth`` set the final search's size (default:
the SPO config's). ``--runs-dir DIR`` keeps the three run directories (with
their final checkpoints) instead of deleting them.

Training wall time is ``train_time`` (rollouts and updates, no evaluations or
checkpoints). On a machine shared with other jobs the timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyenvpool  # noqa: E402
from trainer import checkpoint  # noqa: E402
from trainer.algorithm import greedy_policy  # noqa: E402
from trainer.config import resolve  # noqa: E402
from trainer.distributions import ActionSpace  # noqa: E402
from trainer.envs import TrainingEnvs  # noqa: E402
from trainer.evaluate import Evaluator  # noqa: E402
from trainer.networks import build_agent  # noqa: E402
from trainer.smc import smc_search  # noqa: E402
from trainer.spo import policy_value_fn, search_config, search_policy  # noqa: E402
from trainer.train import Trainer  # noqa: E402


def search_throughput(task: str, threads: int, searches: int, dedupe: bool) -> dict:
    config = resolve(flags={"task": task, "algo": "spo", "env_threads": threads})
    torch.manual_seed(0)
    envs = TrainingEnvs(config.task, config.num_envs, 0, config.task_kwargs, threads)
    agent = build_agent(envs.spec, config.network)
    cfg = search_config(config, training=True)
    g = torch.Generator().manual_seed(0)
    pv = policy_value_fn(agent, torch.device("cpu"), dedupe)
    space = ActionSpace.from_spec(envs.spec)
    sim = net = total = 0.0
    with torch.no_grad():
        smc_search(envs.pool, envs.obs, pv, 0.5, cfg, g, space=space)  # warm-up
        for _ in range(searches):
            r = smc_search(envs.pool, envs.obs, pv, 0.5, cfg, g, space=space)
            sim += r.simulate_seconds
            net += r.network_seconds
            total += r.total_seconds
            envs.step(space.to_env(torch.from_numpy(r.act(greedy=False, generator=g))))
    envs.close()
    steps = searches * config.num_envs * cfg.num_particles * cfg.depth
    return {
        "task": task,
        "network once per distinct particle obs": dedupe,
        "envs x particles x depth": f"{config.num_envs} x {cfg.num_particles} x {cfg.depth}",
        "sim_steps_per_s (engine time)": steps / sim,
        "sim_steps_per_s (whole search)": steps / total,
        "real_steps_per_s (search only)": searches * config.num_envs / total,
        "engine_share": sim / total,
        "network_share": net / total,
    }


def run_config(task, algo, flags, source=None, config_file=None):
    """The config of a run from scratch, or of a fork of the checkpoint ``source``."""
    flags = {"algo": algo, **flags}
    if source is None:
        return resolve(flags={"task": task, **flags}, config_file=config_file)
    return resolve(flags=flags, config_file=config_file, base=source["metadata"]["config"])


def learning_run(task, algo, run_dir, flags, wall_budget=None, source=None, config_file=None):
    """Train from scratch, or from the checkpoint ``source`` (a fork)."""
    config = run_config(task, algo, flags, source, config_file)
    if source is None:
        trainer = Trainer.new(config, run_dir, progress=False)
    else:
        trainer = Trainer.fork(source, config, run_dir, progress=False)
    try:
        if wall_budget is None:
            trainer.run()
        else:  # one update at a time until the training time is spent
            while trainer.counters.train_time < wall_budget:
                trainer.run(max_updates=1)
        return trainer, config
    except BaseException:
        trainer.close()
        raise


def evaluate(agent, config, device, episodes: int, temperature=None, search=None) -> dict:
    """Greedy evaluation on ``episodes`` held-out episodes (one per env) and,
    with a ``temperature``, the SMC search's (``search``: spo overrides)."""
    ev = Evaluator(config.task, episodes, config.eval_seed, config.task_kwargs, 1)
    try:
        space = ActionSpace.from_spec(ev.pool.spec)
        out = {"greedy": ev.run(greedy_policy(agent, device, space), episodes)}
        if temperature is not None:
            cfg = config.model_copy(update={"spo": config.spo.model_copy(update=search or {})})
            policy = search_policy(agent, ev.pool, temperature, cfg, device, config.eval_seed)
            started = time.perf_counter()
            out["search"] = ev.run(policy, episodes)
            out["search"]["seconds"] = time.perf_counter() - started
    finally:
        ev.close()
    return out


def start_evaluation(task: str, flags: dict, episodes: int, source=None, config_file=None,
                     search=None) -> dict:  # fmt: skip
    """Greedy and search evaluations of the starting network: a freshly
    initialised one (how much of the search's return is the search itself
    rather than learning), or the fork's checkpoint."""
    config = run_config(task, "spo", flags, source, config_file)
    torch.manual_seed(config.seed)
    agent = build_agent(make_spec(config), config.network)
    if source is not None:
        agent.load_state_dict(source["model"])
    cpu = torch.device("cpu")
    return evaluate(agent, config, cpu, episodes, config.spo.init_temperature, search)


def make_spec(config):
    pool = pyenvpool.make(config.task, num_envs=1, seed=0, **config.task_kwargs)
    try:
        return pool.spec
    finally:
        pool.close()


def curve(run_dir: Path) -> list[tuple]:
    points = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["category"] == "EVALUATOR":
            points.append(
                (e["env_steps"], e["train_time"], e["mean_return"], e.get("greedy_mean_return"))
            )
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--task", default="Maze-v0")
    ap.add_argument("--spo-steps", type=int, default=30720)
    ap.add_argument("--eval-every", type=int, default=10240)
    ap.add_argument("--eval-episodes", type=int, default=200)
    ap.add_argument("--searches", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--fork", metavar="CKPT", help="start every run from this checkpoint")
    ap.add_argument("--spo-config", metavar="FILE", help="config file over the SPO run's")
    ap.add_argument("--eval-particles", type=int, help="particles of the final search")
    ap.add_argument("--eval-depth", type=int, help="depth of the final search")
    ap.add_argument("--runs-dir", metavar="DIR", help="keep the run directories here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    source = checkpoint.load(args.fork) if args.fork else None
    task = source["metadata"]["task"] if source else args.task
    search = {}
    if args.eval_particles:
        search["num_particles"] = args.eval_particles
    if args.eval_depth:
        search["search_depth"] = args.eval_depth

    if source is None:
        for dedupe in (True, False):
            print("\n== search throughput (fresh network) ==")
            tp = search_throughput(task, args.threads, args.searches, dedupe)
            for k, v in tp.items():
                print(f"  {k:38s} {v:,.3f}" if isinstance(v, float) else f"  {k:38s} {v}")
    if args.skip_train:
        return

    common = {
        "seed": args.seed,
        "torch_threads": args.threads,
        "env_threads": args.threads,
        "eval_episodes": min(args.eval_episodes, 100),
        "eval_num_envs": min(args.eval_episodes, 100),
        "eval_interval": args.eval_every,
        "checkpoint_interval": 0,  # the final checkpoint only
        "tensorboard": False,
        "plot": False,
        "console_interval": 1e9,
    }
    rows = []
    first = start_evaluation(task, common, args.eval_episodes, source, args.spo_config, search)
    rows.append(
        (
            "start" if source else "untrained",
            0,
            0.0,
            first["greedy"]["mean_return"],
            first["search"]["mean_return"],
        )
    )
    print(f"\nstart: {rows[-1]} (search {first['search']['seconds']:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs_dir or tmp)
        started = time.perf_counter()
        spo, spo_cfg = learning_run(
            task,
            "spo",
            runs / "spo",
            {**common, "total_steps": args.spo_steps},
            source=source,
            config_file=args.spo_config,
        )
        wall = spo.counters.train_time
        print(f"\nspo: {spo.counters.env_steps:,} steps, train {wall:.1f} s "
              f"(run {time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
        ppo_s, ppo_s_cfg = learning_run(
            task,
            "ppo",
            runs / "ppo-steps",
            {**common, "total_steps": args.spo_steps},
            source=source,
        )
        ppo_w, ppo_w_cfg = learning_run(
            task,
            "ppo",
            runs / "ppo-wall",
            {**common, "total_steps": 10**9, "eval_interval": 0},
            wall_budget=wall,
            source=source,
        )
        for name, (trainer, cfg) in {
            "spo": (spo, spo_cfg),
            "ppo-steps": (ppo_s, ppo_s_cfg),
            "ppo-wall": (ppo_w, ppo_w_cfg),
        }.items():
            eta = trainer.algo.temperature if cfg.algo == "spo" else None
            ev = evaluate(trainer.agent, cfg, trainer.device, args.eval_episodes, eta, search)
            rows.append(
                (
                    name,
                    trainer.counters.env_steps,
                    trainer.counters.train_time,
                    ev["greedy"]["mean_return"],
                    ev.get("search", {}).get("mean_return", float("nan")),
                )
            )
            print(f"\ncurve of {name} (env_steps, train_s, eval return, greedy return):")
            for p in curve(trainer.run_dir):
                print("  ", p)
            trainer.close()

    size = f"{search.get('num_particles', spo_cfg.spo.num_particles)} x "
    size += f"{search.get('search_depth', spo_cfg.spo.search_depth)}"
    print(f"\n== {task}: final evaluation on {args.eval_episodes} held-out episodes ==")
    print(f"{'run':10s} {'env steps':>10s} {'train s':>8s} {'greedy':>8s} {'search':>8s}")
    for name, steps, t, greedy, result in rows:
        print(f"{name:10s} {steps:>10,d} {t:>8.1f} {greedy:>8.4f} {result:>8.4f}")
    print(f"(search: {size} particles x depth; return: Maze = success rate, "
          "BinPack = volume utilisation)")  # fmt: skip


if __name__ == "__main__":
    main()
