"""trainer: a PyTorch PPO trainer for pyenvpool tasks, and the ``pyenvpool-train`` command.

It uses pyenvpool only through its public API. Modules, in the order data
flows through them:

* ``config``        -- dataclasses, embedded per-task YAML defaults, merging;
* ``envs``          -- training pool with per-episode seeding (exact resume);
* ``networks``      -- actor-critic networks per observation layout;
* ``distributions`` -- masked categorical;
* ``storage``       -- preallocated rollout tensors;
* ``optim``         -- Adam in foreach ops (no torch._dynamo import);
* ``ppo``           -- rollout, GAE, clipped update;
* ``evaluate``      -- separate evaluation pool with per-env quotas;
* ``opponents``     -- fixed players that two-player tasks are evaluated against;
* ``selfplay``      -- self-play envs and a pool of past opponents (two-player tasks);
* ``checkpoint``    -- atomic checkpoints, pointers, retention;
* ``telemetry``     -- metrics.jsonl, console, TensorBoard, progress, plots;
* ``distributed``   -- torchrun ranks: collectives, seeds, per-rank checkpoint state;
* ``train``         -- the loop that ties them together;
* ``cli``           -- the click command.

``smc`` (the SMC search) and ``mpo`` (its losses) are the building blocks of
SPO, which plugs into ``train.ALGORITHMS`` and reuses everything above.
"""
