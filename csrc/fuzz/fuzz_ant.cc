// libFuzzer target: Ant-v5 reset, instances (qpos/qvel from the input) and
// steps (see fuzz_task.h). The MuJoCo library and the model directory come
// from .ci/fuzz (PYENVPOOL_MUJOCO_LIBRARY, PYENVPOOL_MUJOCO_ASSETS).
#include "fuzz/fuzz_task.h"
#include "tasks/ant.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pyenvpool::mujoco::Load(PYENVPOOL_MUJOCO_LIBRARY, PYENVPOOL_MUJOCO_ASSETS);
  // Keeps the compiled model cached for the whole run: every input's task shares it.
  pyenvpool::Kwargs kwargs;
  static const pyenvpool::Ant* keep = new pyenvpool::Ant(kwargs);
  (void)keep;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Observations are unbounded float64; huge (finite) actions give a -inf
  // control cost, as in Gymnasium.
  return pyenvpool::fuzz::RunOne<pyenvpool::Ant>(data, size, /*check_bounds=*/false,
                                                 pyenvpool::Kwargs(), /*finite_reward=*/false);
}
