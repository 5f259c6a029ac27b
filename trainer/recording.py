"""Evaluation episodes as pictures: the final states ``--render`` prints, the
videos ``--evaluate --video`` writes, the animation a run logs to TensorBoard.

A ``Showcase`` plays the first ``count`` evaluation episodes (the evaluation
seed, env ``i`` as the evaluation pool's env ``i``) on a pool of its own
without auto-reset, so an episode's final state stays in place to be drawn
and later steps of that env are absorbing. Two-player tasks play the task's
strongest fixed opponent (the last of ``tasks.Task.opponents``), the policy
moving first in even episodes, and every picture says which side it plays.
The policy is built for ``Showcase.pool`` (a search policy searches from its
live envs), and it is asked for every env at every step.

Videos are H.264 mp4 files written frame by frame through imageio-ffmpeg (the
``video`` extra), so an episode is never held in memory whole; each is written
under a temporary name and renamed into place. ``gif_bytes`` encodes a short
animation with imageio (Pillow) for TensorBoard, whose own ``add_video`` needs
``moviepy.editor``, which moviepy 2 no longer has; the animation is shrunk to
at most ``TENSORBOARD_SIDE`` pixels a side and ``TENSORBOARD_FRAMES`` frames,
since encoding is the cost.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import pyenvpool
from trainer.recurrent import StatefulPolicy
from trainer.rundir import writing
from trainer.tasks import task_info

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
# What of an episode goes to TensorBoard: encoding a GIF costs ~17 ms per
# 600x400 frame and ~4.5 ms at 300x200 (measured: docs/cli.md).
TENSORBOARD_FRAMES = 200
TENSORBOARD_SIDE = 320


class VideoError(RuntimeError):
    """Videos cannot be made here: the video extra is missing, or the task does not draw."""


@dataclass
class Episode:
    """One played episode: the policy's return and length, and its side (two players)."""

    index: int
    episode_return: float = 0.0
    length: int = 0
    side: int | None = None  # 0: the policy moves first
    opponent: str | None = None

    def describe(self, task: str) -> str:
        """Who plays whom, for two-player tasks ('' otherwise)."""
        if self.side is None:
            return ""
        players = task_info(task).players
        return f"the agent plays {players[self.side]} against {self.opponent}"


class Showcase:
    """A pool that plays the first ``count`` evaluation episodes (module docstring)."""

    def __init__(
        self,
        task: str,
        count: int,
        seed: int,
        task_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.task, self.count, self.seed = task, count, seed
        self.pool = pyenvpool.make(
            task,
            count,
            num_threads=num_threads or None,
            seed=seed,
            autoreset=False,
            **(task_kwargs or {}),
        )

    def play(
        self,
        policy: Policy,
        on_states: Callable[[np.ndarray], None] | None = None,
        on_end: Callable[[Episode], None] | None = None,
        max_steps: int = 100_000,
    ) -> list[Episode]:
        """Play every episode to its end; ``on_states(ids)`` is called after the
        reset and after every step with the envs whose state is new (those
        that were still playing), ``on_end(episode)`` when an episode ends."""
        info = task_info(self.task)
        episodes = [Episode(i) for i in range(self.count)]
        opponent, side = None, None
        if info.opponents:
            name, make_opponent = list(info.opponents.items())[-1]
            opponent, side = make_opponent(self.seed), np.arange(self.count) % 2
            for episode in episodes:
                episode.side, episode.opponent = int(side[episode.index]), name
        obs, _ = self.pool.reset(seed=self.seed)
        if isinstance(policy, StatefulPolicy):  # one episode per env: no resets later
            policy.reset(self.count)
        active = np.ones(self.count, bool)
        if on_states is not None:
            on_states(np.arange(self.count))
        for _ in range(max_steps):
            if not active.any():
                break
            actions = np.asarray(policy(obs)).copy()
            ours = None
            if opponent is not None:
                ours = obs["to_play"] == side
                if (~ours).any():
                    actions[~ours] = opponent({k: v[~ours] for k, v in obs.items()})
            obs, reward, terminated, truncated, _ = self.pool.step(actions)
            # Two players: the reward is the mover's; the policy's is its negation
            # when the opponent moved.
            mine = reward if ours is None else np.where(ours, reward, -reward)
            playing = np.flatnonzero(active)
            for i in playing:
                episodes[i].episode_return += float(mine[i])
                episodes[i].length += 1
            if on_states is not None:
                on_states(playing)
            ended = active & (terminated | truncated)
            active &= ~ended
            if on_end is not None:
                for i in np.flatnonzero(ended):
                    on_end(episodes[i])
        return episodes

    def final_pictures(self, policy: Policy) -> list[str]:
        """Text pictures of how each episode ended, with its result."""
        pictures: list[str] = [""] * self.count

        def end(episode: Episode) -> None:
            who = episode.describe(self.task)
            lines = [who] if who else []
            lines.append(self.pool.render(episode.index))
            lines.append(
                f"the episode ended after {episode.length} steps with return "
                f"{episode.episode_return:.4f}"
            )
            pictures[episode.index] = "\n".join(lines)

        self.play(policy, on_end=end)
        return pictures

    def write_videos(self, policy: Policy, folder: Path, prefix: str) -> list[tuple[Path, int]]:
        """Write each episode to ``folder/<prefix>-episode_<i>[-<side>-vs-<opponent>].mp4``;
        returns the paths with their frame counts."""
        write_frames = _video_writer()
        _check_draws(self.pool)
        height, width, _ = self.pool.frame_shape
        fps = task_info(self.task).video_fps
        with writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
        tmp_paths = [folder / f".tmp-{uuid.uuid4().hex[:8]}.mp4" for _ in range(self.count)]
        writers: list[Any] = []
        frames = [0] * self.count
        done: list[Path | None] = [None] * self.count
        try:
            for tmp in tmp_paths:
                with writing(tmp):
                    writer = write_frames(
                        str(tmp), (width, height), fps=fps, macro_block_size=1, quality=7
                    )
                    writer.send(None)  # start ffmpeg
                writers.append(writer)

            def draw(ids: np.ndarray) -> None:
                for i, frame in zip(ids, self.pool.render(ids, mode="rgb_array")):
                    with writing(tmp_paths[i]):
                        writers[i].send(np.ascontiguousarray(frame))
                    frames[i] += 1

            def end(episode: Episode) -> None:
                i = episode.index
                with writing(tmp_paths[i]):
                    writers[i].close()
                name = f"{prefix}-episode_{i}"
                if episode.side is not None:
                    name += f"-{('first', 'second')[episode.side]}-vs-{episode.opponent}"
                done[i] = folder / f"{name}.mp4"
                with writing(done[i]):
                    tmp_paths[i].replace(done[i])

            self.play(policy, on_states=draw, on_end=end)
        finally:
            for writer in writers:
                with contextlib.suppress(Exception):
                    writer.close()
            for tmp in tmp_paths:
                tmp.unlink(missing_ok=True)
        return [(path, n) for path, n in zip(done, frames) if path is not None]

    def animation(
        self,
        policy: Policy,
        max_frames: int = TENSORBOARD_FRAMES,
        longest_side: int = TENSORBOARD_SIDE,
    ) -> np.ndarray:
        """The frames of the first episode (at most ``max_frames``), [T, H, W, 3],
        every k-th pixel kept so that no side is longer than ``longest_side``."""
        _check_draws(self.pool)
        stride = -(-max(self.pool.frame_shape[:2]) // longest_side)
        frames: list[np.ndarray] = []

        def draw(ids: np.ndarray) -> None:
            if 0 in ids and len(frames) < max_frames:
                frames.append(self.pool.render(0, mode="rgb_array")[::stride, ::stride])

        self.play(policy, on_states=draw)
        return np.ascontiguousarray(np.stack(frames))

    def close(self) -> None:
        self.pool.close()


def gif_bytes(frames: np.ndarray, fps: int) -> bytes:
    """``frames`` [T, H, W, 3] as an animated GIF that loops."""
    return _gif_writer().imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)


def check_animations(pool: Any) -> None:
    """Raise ``VideoError`` now, before a run starts, if its TensorBoard
    animations could not be made later (no imageio, or a task that does not draw)."""
    _gif_writer()
    _check_draws(pool)


def _gif_writer() -> Any:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise VideoError(_missing("imageio")) from None
    return iio


def _video_writer() -> Callable[..., Any]:
    try:
        from imageio_ffmpeg import write_frames
    except ImportError:
        raise VideoError(_missing("imageio-ffmpeg")) from None
    return write_frames


def _missing(package: str) -> str:
    return (
        f"videos need {package}, which is not installed: pip install 'pyenvpool[video]' "
        f"(or pip install {package})"
    )


def _check_draws(pool: Any) -> None:
    if "rgb_array" not in pool.render_modes:
        raise VideoError(
            f"{pool.task_id} does not draw rgb frames in this build of pyenvpool, so it has no "
            "videos (--render K prints final states as text)"
        )
