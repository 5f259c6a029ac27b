"""Scaling of data-parallel training from 1 to N processes (torchrun ranks).

    python studies/distributed_scaling.py                         # CartPole-v1, 1 and 2 ranks, CPU
    python studies/distributed_scaling.py --nprocs 1,2,4,8 --device cuda --seeds 1
    python studies/distributed_scaling.py --task BinPack-v0 --total-steps 20000 --target none

Every configuration runs the whole command in fresh processes, seed by seed:
``python -m trainer.cli`` for one rank, ``torchrun --standalone
--nproc-per-node N -m trainer.cli`` for N, with the task's embedded default
config. Two ways to scale:

* ``strong`` (default): the global batch stays the task default, so each of
  N ranks runs ``num_envs / N`` envs. The same algorithm, split N ways:
  speed-up in steps/s and in time to the target is the scaling.
* ``weak``: each rank runs the default ``num_envs``, so the global batch (and
  the env steps per update) grows N-fold.

From rank 0's ``metrics.jsonl`` it reports, per configuration (medians over
seeds):

* ``steps/s``: env steps of all ranks / training wall time (rollouts and
  updates, collectives included; evaluations and checkpoints excluded);
* ``to target``: training wall time and env steps until the first greedy
  evaluation (100 episodes) whose mean return reaches ``--target``
  (CartPole-v1: 475, as ``train_cartpole.py``);
* ``command``: the whole command, start to exit (imports, rendezvous, the
  full default budget, evaluations, checkpoints);
* ``efficiency``: steps/s at N ranks / (N x steps/s at one rank).

Engine threads default to the node's cores split between the ranks and torch
threads to the config's (1 for CartPole). With ``--device cuda`` every rank
uses the one GPU; ranks sharing a GPU communicate through gloo (NCCL refuses
two ranks on one device), or ``--backend nccl`` to try it anyway. The
machine's other load shows up in every number: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The checkout goes on the child's path only when it holds a development
# build (pyenvpool/_core*.so); otherwise the child imports the installed package.
IN_PLACE = [str(ROOT)] if any((ROOT / "pyenvpool").glob("_core*.so")) else []


def default_num_envs(task: str) -> int:
    path = ROOT / "trainer" / "configs" / f"{task}.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return int(data.get("num_envs", 64))


def run_one(args: argparse.Namespace, nproc: int, mode: str, seed: int, root: Path) -> dict:
    run_dir = root / f"{args.task}-{mode}-n{nproc}-seed{seed}"
    flags = ["--task", args.task, "--seed", str(seed), "--run-dir", str(run_dir), "--no-progress"]
    flags += ["--device", args.device]
    if args.total_steps:
        flags += ["--total-steps", str(args.total_steps)]
    if mode == "strong" and nproc > 1:
        num_envs = default_num_envs(args.task)
        if num_envs % nproc:
            raise SystemExit(f"{num_envs} envs do not split over {nproc} ranks")
        flags += ["--num-envs", str(num_envs // nproc)]
    flags += args.extra
    if nproc == 1:
        command = [sys.executable, "-m", "trainer.cli", *flags]
    else:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "trainer.cli", *flags,
        ]  # fmt: skip
    env = dict(
        os.environ,
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        PYTHONPATH=os.pathsep.join(IN_PLACE + [os.environ.get("PYTHONPATH", "")]),
    )
    if args.backend:
        env["PYENVPOOL_DIST_BACKEND"] = args.backend
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    command_s = time.perf_counter() - start
    if done.returncode != 0:
        tail = f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        raise SystemExit(f"{' '.join(command)} failed:\n{tail}")
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    trainer = [e for e in events if e["category"] == "TRAINER"]
    evaluations = [e for e in events if e["category"] == "EVALUATOR"]
    hit = None
    if args.target is not None:
        hit = next((e for e in evaluations if e["mean_return"] >= args.target), None)
    last = trainer[-1]
    return {
        "nproc": nproc,
        "mode": mode,
        "seed": seed,
        "env_steps": last["env_steps"],
        "train_s": last["train_time"],
        "steps_per_s": last["env_steps"] / last["train_time"],
        "target_s": hit["train_time"] if hit else None,
        "target_steps": hit["env_steps"] if hit else None,
        "command_s": command_s,
        "final_return": evaluations[-1]["mean_return"] if evaluations else None,
    }


def median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="CartPole-v1")
    parser.add_argument("--nprocs", default="1,2", help="rank counts, comma-separated")
    parser.add_argument("--modes", default="strong", help="strong, weak or strong,weak")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--backend", choices=["gloo", "nccl"], help="PYENVPOOL_DIST_BACKEND")
    parser.add_argument("--total-steps", type=int, help="override the default budget")
    parser.add_argument(
        "--target",
        default="475",
        help="evaluation mean return to time (none: throughput only)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument("extra", nargs="*", help="more trainer flags (after --)")
    args = parser.parse_args()
    args.target = None if args.target.lower() == "none" else float(args.target)
    nprocs = [int(n) for n in args.nprocs.split(",")]
    modes = args.modes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path("runs/distributed_scaling") if args.keep else Path(tmp)
        # Seed-major order interleaves the configurations, so a change in the
        # machine's load touches them alike.
        for seed in seeds:
            for mode in modes:
                for nproc in nprocs:
                    if mode == "weak" and nproc == 1 and "strong" in modes:
                        continue  # the same run as strong at one rank
                    result = run_one(args, nproc, mode, seed, root)
                    results.append(result)
                    print(json.dumps(result), flush=True)
    print(
        f"\n{args.task}, device {args.device}, {os.cpu_count()} cores, seeds {args.seeds} "
        "(medians; efficiency = steps/s / (N x steps/s at 1 rank))"
    )
    header = ("mode", "ranks", "steps/s", "effic.", "to target s", "steps", "command s", "final")
    print("{:>6} {:>5} {:>10} {:>7} {:>11} {:>9} {:>9} {:>6}".format(*header))
    base = median([r["steps_per_s"] for r in results if r["nproc"] == 1])
    summary = []
    for mode in modes:
        for nproc in nprocs:
            rows = [r for r in results if r["nproc"] == nproc and (r["mode"] == mode or nproc == 1)]
            sps = median([r["steps_per_s"] for r in rows])
            target_s = median([r["target_s"] for r in rows])
            target_steps = median([r["target_steps"] for r in rows])
            reached = sum(r["target_s"] is not None for r in rows)
            efficiency = sps / (nproc * base) if base and sps else None
            final = median([r["final_return"] for r in rows])
            summary.append(
                {
                    "mode": mode,
                    "nproc": nproc,
                    "steps_per_s": sps,
                    "efficiency": efficiency,
                    "target_s": target_s,
                    "target_steps": target_steps,
                    "reached": f"{reached}/{len(rows)}",
                    "command_s": median([r["command_s"] for r in rows]),
                }
            )
            print(
                f"{mode:>6} {nproc:>5} {sps:>10,.0f} "
                f"{efficiency if efficiency is not None else float('nan'):>7.2f} "
                + (
                    f"{target_s:>11.2f} {target_steps:>9,.0f}"
                    if target_s is not None
                    else f"{'-':>11} {'-':>9}"
                )
                + f" {summary[-1]['command_s']:>9.1f} "
                + (f"{final:>6.1f}" if final is not None else f"{'-':>6}")
                + (f"  ({reached}/{len(rows)} reached)" if args.target is not None else "")
            )
    print(json.dumps({"cpu_count": os.cpu_count(), "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
