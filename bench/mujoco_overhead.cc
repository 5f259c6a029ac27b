// The engine's cost per MuJoCo step above mj_step itself, on one thread.
//
//   built and run by bench/compare_mujoco.py (--overhead); by hand:
//   g++ -O3 -std=c++17 -ffp-contract=off -Icsrc -I<site-packages>/mujoco/include \
//     bench/mujoco_overhead.cc csrc/mujoco/runtime.cpp -ldl -pthread -o /tmp/overhead
//   /tmp/overhead <libmujoco.so> <assets dir> <task> <envs> <steps> <rounds>
//
// Three ways to step the same envs from the same states with the same
// actions (they follow the same trajectories, bit for bit):
//   raw:   one mjData per env, as EnvPool keeps them: ctrl = action, mj_step
//          frame_skip times (and mj_rnePostConstraint for Ant). Physics only.
//   task:  the task's Step and WriteObs on each env's State: the physics plus
//          mj_setState/mj_getState through a borrowed scratch mjData, the
//          reward terms and the observation row.
//   pool:  Pool<Task>::Step with one thread: the task plus the engine's
//          loop, episode bookkeeping and output buffers (no Python).
// and, alone, the mj_setState + mj_getState pair that `task` adds per step.
// Rounds alternate the three; the medians of per-env-step microseconds of
// thread CPU time print as one line of JSON.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/pool.h"
#include "mujoco/runtime.h"
#include "tasks/ant.h"
#include "tasks/half_cheetah.h"
#include "tasks/hopper.h"
#include "tasks/walker2d.h"

namespace {

using namespace pyenvpool;
// This thread's CPU time: time the machine spent on other processes (it is
// shared) does not count.
struct Clock {
  static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Task>
void Run(int envs, int steps, int rounds, bool rne_post) {
  Kwargs kwargs;
  Task task(kwargs);
  const TaskSpec spec = task.Spec();
  const int nu = static_cast<int>(spec.action.NumElements());
  const auto& api = mujoco::Api();
  std::mt19937 gen(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  // Gentle actions keep Hopper, Walker2d and Ant up, so no env resets mid-run.
  std::vector<float> actions(static_cast<size_t>(steps) * envs * nu);
  for (float& a : actions) a = 0.2f * uniform(gen);

  std::vector<typename Task::State> start(envs);
  for (int i = 0; i < envs; ++i) {
    start[i].rng.Seed(1, i);
    task.Reset(start[i]);
  }
  // Per-field row buffers for WriteObs.
  std::vector<std::vector<uint8_t>> rows;
  std::vector<uint8_t*> pointers;
  std::vector<int64_t> row_bytes;
  for (const auto& f : spec.obs_fields) {
    rows.emplace_back(f.RowBytes());
    pointers.push_back(rows.back().data());
    row_bytes.push_back(f.RowBytes());
  }
  const ObsRow row{pointers.data(), row_bytes.data(), 0};

  // The model `task` holds (models are shared per file).
  const mjModel* model = typename Task::Physics(Task::kId, Task::kFile, 1).m();
  std::vector<mjData*> datas(envs);
  for (auto& d : datas) d = api.mj_makeData(model);
  int frame_skip = 0;
  {
    std::string config = kwargs.Resolved();
    frame_skip = std::stoi(config.substr(config.find("frame_skip=") + 11));
  }

  std::vector<double> raw, stepped, pooled, setget;
  for (int r = 0; r < rounds; ++r) {
    // raw
    for (int i = 0; i < envs; ++i) {
      api.mj_setState(model, datas[i], start[i].physics, mujoco::kSignature);
    }
    auto t0 = Clock::now();
    for (int t = 0; t < steps; ++t) {
      for (int i = 0; i < envs; ++i) {
        mjData* d = datas[i];
        const float* a = &actions[(static_cast<size_t>(t) * envs + i) * nu];
        for (int j = 0; j < nu; ++j) d->ctrl[j] = a[j];
        for (int k = 0; k < frame_skip; ++k) api.mj_step(model, d);
        if (rne_post) api.mj_rnePostConstraint(model, d);
      }
    }
    raw.push_back((Clock::now() - t0) /
                  (static_cast<double>(steps) * envs));

    // task
    std::vector<typename Task::State> states = start;
    t0 = Clock::now();
    for (int t = 0; t < steps; ++t) {
      for (int i = 0; i < envs; ++i) {
        task.Step(states[i], &actions[(static_cast<size_t>(t) * envs + i) * nu]);
        task.WriteObs(states[i], row);
      }
    }
    stepped.push_back((Clock::now() - t0) /
                      (static_cast<double>(steps) * envs));
    for (int i = 0; i < envs; ++i) {  // the same trajectory as raw, bit for bit
      double state[Task::Physics::kStateSize];
      api.mj_getState(model, datas[i], state, mujoco::kSignature);
      if (std::memcmp(state + 1, states[i].physics + 1, sizeof(double) * (Task::kNq + Task::kNv))) {
        std::fprintf(stderr, "raw and task trajectories differ (env %d)\n", i);
        std::exit(1);
      }
    }

    // mj_setState + mj_getState alone, on one mjData: the price of keeping
    // the physics in the State, which `task` pays on top of the physics.
    t0 = Clock::now();
    for (int t = 0; t < steps; ++t) {
      for (int i = 0; i < envs; ++i) {
        api.mj_setState(model, datas[0], states[i].physics, mujoco::kSignature);
        api.mj_getState(model, datas[0], states[i].physics, mujoco::kSignature);
      }
    }
    setget.push_back((Clock::now() - t0) / (static_cast<double>(steps) * envs));

    // pool (its own envs, seeded like `start`)
    Kwargs pool_kwargs;
    Pool<Task> pool(Task(pool_kwargs), pool_kwargs.Resolved(), envs, 1, 1, 0, envs, true);
    const Targets& out = pool.live_targets();
    t0 = Clock::now();
    for (int t = 0; t < steps; ++t) pool.Step(&actions[static_cast<size_t>(t) * envs * nu], out);
    pooled.push_back((Clock::now() - t0) /
                     (static_cast<double>(steps) * envs));
  }
  for (auto d : datas) api.mj_deleteData(d);
  std::printf(
      "{\"task\": \"%s\", \"envs\": %d, \"steps\": %d, \"rounds\": %d, \"raw_us\": %.3f, "
      "\"task_us\": %.3f, \"pool_us\": %.3f, \"task_overhead_us\": %.3f, "
      "\"pool_overhead_us\": %.3f, \"set_get_state_us\": %.3f}\n",
      Task::kId, envs, steps, rounds, Median(raw), Median(stepped), Median(pooled),
      Median(stepped) - Median(raw), Median(pooled) - Median(raw), Median(setget));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s LIBMUJOCO ASSETS_DIR TASK ENVS STEPS ROUNDS\n", argv[0]);
    return 2;
  }
  pyenvpool::mujoco::Load(argv[1], argv[2]);
  const std::string task = argv[3];
  const int envs = std::atoi(argv[4]), steps = std::atoi(argv[5]), rounds = std::atoi(argv[6]);
  if (task == "HalfCheetah-v5") Run<pyenvpool::HalfCheetah>(envs, steps, rounds, false);
  else if (task == "Hopper-v5") Run<pyenvpool::Hopper>(envs, steps, rounds, false);
  else if (task == "Walker2d-v5") Run<pyenvpool::Walker2d>(envs, steps, rounds, false);
  else if (task == "Ant-v5") Run<pyenvpool::Ant>(envs, steps, rounds, true);
  else return 2;
  return 0;
}
