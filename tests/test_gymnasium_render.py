"""Pictures through Gymnasium: ``render_mode="rgb_array"`` in GymnasiumEnv and
GymnasiumVectorEnv, Gymnasium's RecordVideo (single and vector) writing files
that decode again, HumanRendering, and no rendering work when it is off.

Every task is covered. A task whose C++ header has no ``Draw`` yet is expected
to fail (strict xfail) with the adapters' "does not draw frames" ValueError;
the mark disappears by itself once the task draws."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.wrappers import vector as vector_wrappers  # noqa: E402

import pyenvpool  # noqa: E402
from pyenvpool import GymnasiumEnv, GymnasiumVectorEnv  # noqa: E402


def _frame_shape(task_id: str):
    with pyenvpool.make(task_id, 1) as pool:
        return pool.frame_shape


def _tasks() -> list:
    params = []
    for task_id in pyenvpool.list_tasks():
        marks = ()
        if _frame_shape(task_id) is None:
            reason = f"{task_id} draws no rgb frames yet (no Draw in its header)"
            marks = pytest.mark.xfail(raises=ValueError, strict=True, reason=reason)
        params.append(pytest.param(task_id, marks=marks, id=task_id))
    return params


TASKS = _tasks()


def check_frame(frame, shape) -> None:
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.shape == shape and shape[2] == 3
    colours = np.unique(frame.reshape(-1, 3), axis=0)
    assert len(colours) > 1, "blank frame"


def play(env, steps: int, seed: int = 0):
    """Random actions until an episode ends or `steps` pass; returns the last step."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        result = env.step(env.action_space.sample())
        if np.any(result[2]) or np.any(result[3]):
            break
    return result


# ----------------------------------------------------------------- frames
@pytest.mark.parametrize("task_id", TASKS)
def test_single_env_frames(task_id):
    with GymnasiumEnv(task_id, render_mode="rgb_array") as env:
        shape = env.pool.frame_shape
        env.reset(seed=0)
        check_frame(env.render(), shape)
        _, _, terminated, truncated, _ = play(env, 200)
        last = env.render()
        check_frame(last, shape)
        if terminated or truncated:  # the pool keeps the final state: the last picture
            np.testing.assert_array_equal(env.pool.render(0, mode="rgb_array"), last)


@pytest.mark.parametrize("task_id", TASKS)
@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_vector_env_frames(task_id, mode):
    """Gymnasium's convention (SyncVectorEnv.render): a tuple of one frame per env."""
    envs = GymnasiumVectorEnv(task_id, 3, render_mode="rgb_array", autoreset_mode=mode)
    envs.reset(seed=0)
    play(envs, 10)
    frames = envs.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    for frame, expected in zip(frames, envs.pool.render(None, mode="rgb_array")):
        check_frame(frame, envs.pool.frame_shape)
        np.testing.assert_array_equal(frame, expected)
    np.testing.assert_array_equal(envs.call("render")[1], frames[1])
    envs.close()


# ------------------------------------------------------------------ video
@pytest.mark.parametrize("task_id", TASKS)
def test_record_video_single(task_id, tmp_path):
    """RecordVideo writes one playable file per episode, one frame per reset
    and step, that decodes to frames like the rendered ones."""
    imageio = pytest.importorskip("imageio.v3")
    pytest.importorskip("moviepy")
    env = gym.make(f"pyenvpool/{task_id}", render_mode="rgb_array", max_episode_steps=40)
    env = gym.wrappers.RecordVideo(env, str(tmp_path), episode_trigger=lambda e: True)
    env.reset(seed=0)
    env.action_space.seed(0)
    first = env.render()
    steps = 0
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert len(env.recorded_frames) == steps + 1
    env.close()
    (video,) = tmp_path.glob("*.mp4")
    frames = imageio.imread(video, index=None)
    # moviepy rounds the clip's duration and drops the last frame for some
    # lengths (11 to 14 frames at 50 fps), so the file may hold one fewer.
    assert frames.shape[0] in (steps, steps + 1)
    assert frames.shape[1:] == first.shape and frames.dtype == np.uint8
    assert np.abs(frames[0].astype(int) - first).mean() < 8  # lossy, but the same picture
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) > 1


@pytest.mark.parametrize("task_id", TASKS)
def test_record_video_vector(task_id, tmp_path):
    imageio = pytest.importorskip("imageio.v3")
    pytest.importorskip("moviepy")
    envs = GymnasiumVectorEnv(task_id, 2, render_mode="rgb_array")
    envs = vector_wrappers.RecordVideo(envs, str(tmp_path), episode_trigger=lambda e: e == 0)
    envs.reset(seed=0)
    for _ in range(60):
        envs.step(envs.action_space.sample())
    envs.close()
    (video,) = tmp_path.glob("*.mp4")
    frames = imageio.imread(video, index=None)
    assert frames.ndim == 4 and frames.shape[0] > 1 and frames.shape[-1] == 3
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) > 1


# ---------------------------------------------------------- human render
@pytest.mark.parametrize("task_id", TASKS)
def test_human_rendering(task_id, monkeypatch):
    """HumanRendering shows the rgb frames in a pygame window (a dummy video
    driver here); gymnasium.make(render_mode="human") applies it by itself."""
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gym.make(f"pyenvpool/{task_id}", render_mode="human")
    assert isinstance(env, gym.wrappers.HumanRendering)
    play(env, 5)
    env.close()


@pytest.mark.parametrize("task_id", TASKS)
def test_vector_human_rendering(task_id, monkeypatch):
    pytest.importorskip("pygame")
    pytest.importorskip("cv2")  # Gymnasium's vector HumanRendering resizes with OpenCV
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    envs = vector_wrappers.HumanRendering(GymnasiumVectorEnv(task_id, 4, render_mode="rgb_array"))
    play(envs, 5)
    envs.close()


# ------------------------------------------------------- rendering off
def test_no_rendering_when_off():
    """Stepping never draws: with render_mode=None the pool's render is not
    called (the engine draws only when asked, so this is all it takes)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("rendered while rendering is off")

    single = GymnasiumEnv("CartPole-v1")
    envs = GymnasiumVectorEnv("CartPole-v1", 4)
    for env in (single, envs):
        env.pool.render = forbidden
        play(env, 50)
        env.close()
