// The task registry: task ids and how to build a pool of each.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/pool.h"
#include "core/spec.h"

namespace pyenvpool {

struct PoolOptions {
  int64_t num_envs = 1;
  int num_threads = 1;
  uint64_t seed = 0;
  int64_t max_snapshots = 0;
  int64_t batch_size = 1;
  Autoreset autoreset = Autoreset::kSameStep;
};

struct TaskEntry {
  const char* id;
  std::unique_ptr<PoolBase> (*make)(Kwargs& kwargs, const PoolOptions& options);
};

const std::vector<TaskEntry>& RegisteredTasks();

// Throws ValueError listing the known ids when `task_id` is not registered.
std::unique_ptr<PoolBase> MakePool(const std::string& task_id, Kwargs& kwargs,
                                   const PoolOptions& options);

}  // namespace pyenvpool
