// The task registry. Adding a task: write csrc/tasks/<name>.h, include it
// here and add one Entry<...>() line (docs/adding-a-task.md). Nothing else
// changes: the pool, the bindings, snapshots, `spec` and the Gymnasium adapter
// derive from the task.
#include "registry.h"

// The MuJoCo tasks: built when the MuJoCo headers are found (CMakeLists.txt).
#ifdef PYENVPOOL_WITH_MUJOCO
#include "tasks/ant.h"
#include "tasks/half_cheetah.h"
#include "tasks/hopper.h"
#include "tasks/walker2d.h"
#endif

#include "tasks/acrobot.h"
#include "tasks/bandit.h"
#include "tasks/binpack.h"
#include "tasks/cartpole.h"
#include "tasks/connect_four.h"
#include "tasks/delay.h"
#include "tasks/maze.h"
#include "tasks/memory.h"
#include "tasks/mountain_car.h"
#include "tasks/mountain_car_continuous.h"
#include "tasks/pendulum.h"
#include "tasks/squared.h"

namespace pyenvpool {
namespace {

template <class Task>
TaskEntry Entry() {
  return {Task::kId, [](Kwargs& kwargs, const PoolOptions& o) -> std::unique_ptr<PoolBase> {
            Task task(kwargs);                // reads (and checks) the kwargs first
            kwargs.CheckAllUsed(Task::kId);  // in case the task did not
            return std::make_unique<Pool<Task>>(std::move(task), kwargs.Resolved(), o.num_envs,
                                                o.num_threads, o.seed, o.max_snapshots,
                                                o.batch_size, o.autoreset);
          }};
}

// `tasks`, then the MuJoCo tasks when this build has them.
std::vector<TaskEntry> WithMujocoTasks(std::vector<TaskEntry> tasks) {
#ifdef PYENVPOOL_WITH_MUJOCO
  for (TaskEntry entry : {Entry<HalfCheetah>(), Entry<Hopper>(), Entry<Walker2d>(), Entry<Ant>()}) {
    tasks.push_back(entry);
  }
#endif
  return tasks;
}

}  // namespace

const std::vector<TaskEntry>& RegisteredTasks() {
  static const std::vector<TaskEntry> tasks = WithMujocoTasks({
      Entry<CartPole>(),
      Entry<BinPack>(),
      Entry<Maze>(),
      Entry<ConnectFour>(),
      Entry<Delay>(),
      Entry<Bandit>(),
      Entry<Squared>(),
      Entry<Pendulum>(),
      Entry<MountainCarContinuous>(),
      Entry<Acrobot>(),
      Entry<MountainCar>(),
      Entry<Memory>(),
  });
  return tasks;
}

std::unique_ptr<PoolBase> MakePool(const std::string& task_id, Kwargs& kwargs,
                                   const PoolOptions& options) {
  std::string known;
  for (const auto& entry : RegisteredTasks()) {
    if (task_id == entry.id) return entry.make(kwargs, options);
    known += (known.empty() ? "" : ", ") + std::string(entry.id);
  }
  throw ValueError("unknown task_id '" + task_id + "'; known tasks: " + known);
}

}  // namespace pyenvpool
