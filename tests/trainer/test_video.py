"""Evaluation videos: ``--evaluate CKPT --video N`` writes mp4 files that imageio
reads back with one frame per state (the first, then one per step), and a run
logs its first evaluation episode to TensorBoard as an animation."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

import trainer.cli
from trainer.recording import Showcase, VideoError, gif_bytes
from trainer.train import Trainer

iio = pytest.importorskip("imageio.v3", reason="videos need the video extra")
pytest.importorskip("imageio_ffmpeg", reason="videos need the video extra")


def left(obs):
    return np.zeros(len(obs["obs"]), np.int64)


def test_videos_have_one_frame_per_state_and_show_the_episode(tmp_path):
    kwargs = {"max_episode_steps": 30}
    showcase = Showcase("CartPole-v1", 3, seed=7, task_kwargs=kwargs)
    lengths = [e.length for e in showcase.play(left)]
    written = showcase.write_videos(left, tmp_path / "videos", "step_0")
    showcase.close()
    assert [p.name for p, _ in written] == [f"step_0-episode_{i}.mp4" for i in range(3)]
    for (path, frames), length in zip(written, lengths):
        video = iio.imread(path)
        assert frames == length + 1 and video.shape == (length + 1, 400, 600, 3)
        assert video.std() > 10  # not blank
        # The cart and pole move: every frame differs from the first by more
        # than the codec's noise does.
        assert np.abs(video[-1].astype(int) - video[0].astype(int)).mean() > 0.5
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [p.name for p, _ in written]


def test_evaluate_writes_videos_into_the_run(tmp_path, tiny_config):
    config = tiny_config(total_steps=256)
    run = Trainer.new(config, tmp_path / "run", progress=False)
    run.run()
    run.close()
    result = CliRunner().invoke(
        trainer.cli.main, ["--evaluate", str(tmp_path / "run"), "--video", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("video ")]
    assert len(lines) == 2
    for i, line in enumerate(lines):
        path = tmp_path / "run" / "videos" / f"step_256-episode_{i}.mp4"
        frames = int(line.split("(")[1].split()[0])
        assert line == f"video {path} ({frames} frames)"
        video = iio.imread(path)
        assert len(video) == frames > 1 and video.std() > 10


def test_two_player_videos_name_the_side_and_the_opponent(tmp_path):
    showcase = Showcase("ConnectFour-v0", 2, seed=0)
    written = showcase.write_videos(
        lambda obs: np.zeros(len(obs["to_play"]), np.int64), tmp_path, "step_5"
    )
    showcase.close()
    assert [p.name for p, _ in written] == [
        "step_5-episode_0-first-vs-heuristic.mp4",
        "step_5-episode_1-second-vs-heuristic.mp4",
    ]


def test_a_missing_video_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    showcase = Showcase("CartPole-v1", 1, seed=0)
    with pytest.raises(VideoError, match=r"pip install 'pyenvpool\[video\]'"):
        showcase.write_videos(left, tmp_path, "x")
    showcase.close()
    assert list(tmp_path.iterdir()) == []


def test_a_run_logs_an_evaluation_animation_to_tensorboard(tmp_path, tiny_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(total_steps=256, tensorboard=True)
    run = Trainer.new(config, tmp_path / "run", progress=False, tensorboard_video=True)
    run.run()
    run.close()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    images = events.Images("evaluation/episode")
    assert [image.step for image in images] == [256]  # one evaluation: at the end
    gif = iio.imread(images[0].encoded_image_string, extension=".gif")
    assert gif.shape[0] > 1 and gif.shape[1:3] == (200, 300) and gif.std() > 10  # shrunk


def test_gif_bytes_loop_at_the_tasks_pace():
    frames = np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    gif = gif_bytes(frames, fps=4)
    meta = iio.immeta(gif, extension=".gif")
    assert meta["duration"] == 250 and meta["loop"] == 0
    assert iio.imread(gif, extension=".gif").shape[0] == 5
