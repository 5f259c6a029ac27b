"""Which greedy HalfCheetah episodes of a checkpoint flip the cheetah over.

    python studies/halfcheetah_flips.py CHECKPOINT [CHECKPOINT ...] [--episodes 50]

Plays ``--episodes`` greedy episodes (the policy's mean action, as the
trainer's evaluations do) of each checkpoint of a ``HalfCheetah-v5`` run, one
env per episode, and follows the torso's pitch, ``qpos[2]`` (the info field
``qpos``; the final step's from ``final_info``). An episode *flips* when the
pitch passes +-pi/2, the torso upside down. It prints the mean return of the
episodes that never flip and of those that do, and the lowest returns with the
steps spent upside down and the first such step.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import pyenvpool
from trainer import checkpoint
from trainer.algorithm import algorithm_class
from trainer.config import from_dict
from trainer.networks import build_agent

TASK = "HalfCheetah-v5"
LENGTH = 1000  # the v5 time limit; no HalfCheetah episode terminates earlier


def flips(path: str, episodes: int, seed: int) -> None:
    source = checkpoint.load(path)
    config = from_dict(source["metadata"]["config"], f"{source['path']}/metadata.json")
    if config.task != TASK:
        raise SystemExit(f"{path} is a checkpoint of {config.task}, not {TASK}")
    pool = pyenvpool.make(TASK, episodes, seed=seed)
    agent = build_agent(pool.spec, config.network)
    agent.load_state_dict(source["model"])
    policy, _ = algorithm_class(config.algo).saved_policy(
        agent, pool, config, torch.device("cpu"), source
    )
    obs, _ = pool.reset()
    returns = np.zeros(episodes)
    upside_down = np.zeros(episodes, np.int64)
    first = np.full(episodes, -1)
    for t in range(LENGTH):
        obs, reward, terminated, truncated, info = pool.step(policy(obs))
        returns += reward
        ended = terminated | truncated
        pitch = np.where(ended, info["final_info"]["qpos"][:, 2], info["qpos"][:, 2])
        flipped = np.abs(pitch) > np.pi / 2
        upside_down += flipped
        first[(first < 0) & flipped] = t
    pool.close()
    if not ended.all():
        raise SystemExit(f"an episode did not end after {LENGTH} steps")
    never = upside_down == 0
    print(
        f"{source['path']} ({source['metadata']['env_steps']:,} steps): mean return"
        f" {returns.mean():,.0f} over {episodes} episodes; {int((~never).sum())} flip"
    )
    for label, rows in (("never flip", never), ("flip", ~never)):
        if rows.any():
            print(f"  the {rows.sum()} that {label}: mean return {returns[rows].mean():,.0f}")
    for i in np.argsort(returns)[:5]:
        where = f"first at step {first[i]}" if first[i] >= 0 else "never"
        print(f"  return {returns[i]:7,.0f}: upside down {upside_down[i]:4d} steps, {where}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=12345, help="seed of the episodes' start states")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for path in args.checkpoints:
        flips(path, args.episodes, args.seed)


if __name__ == "__main__":
    main()
