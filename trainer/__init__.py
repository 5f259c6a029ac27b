"""trainer: a PyTorch PPO and SPO trainer for pyenvpool tasks, and the ``pyenvpool-train`` command.

It uses pyenvpool only through its public API. A parameter flows one way:
command line -> config -> the training loop -> envs and algorithm -> pyenvpool.

* ``cli``           -- the click command: train, resume, fork, evaluate;
* ``config``        -- pydantic models, embedded per-task YAML defaults, the layers;
* ``tasks``         -- what the trainer knows per task: network, metrics, opponents;
* ``train``         -- the loop: one run directory, its updates, evaluations, checkpoints;
* ``algorithm``     -- the interface between the loop and an algorithm;
* ``ppo``, ``spo``  -- the algorithms (SPO builds on ``smc``, the search, and ``mpo``,
  its losses);
* ``advantages``    -- GAE (with the negamax option for self-play), explained variance;
* ``batching``      -- batch sizes and update counts;
* ``storage``       -- preallocated rollout storage and the replay buffer;
* ``envs``          -- the training pool with exact save and restore;
* ``selfplay``      -- self-play envs and a pool of past opponents (two-player tasks);
* ``networks``      -- actor-critic networks per observation layout;
* ``distributions`` -- masked categorical;
* ``optim``         -- Adam in foreach ops (no torch._dynamo import);
* ``evaluate``      -- the evaluation protocol on a separate pool, and ``--evaluate``;
* ``recording``     -- evaluation episodes as final-state pictures, mp4 videos, GIFs;
* ``opponents``     -- fixed players that two-player tasks are evaluated against;
* ``checkpoint``    -- atomic checkpoints, pointers, retention, damage in words;
* ``rundir``        -- the run directory's files, and OS errors a person can act on;
* ``telemetry``     -- metrics.jsonl, console, TensorBoard, progress, plots;
* ``runtime``       -- device, thread count, seeds and global RNG states;
* ``distributed``   -- torchrun ranks: collectives, seeds, per-rank checkpoint state.
"""
