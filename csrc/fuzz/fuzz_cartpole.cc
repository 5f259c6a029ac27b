// libFuzzer target: CartPole-v1 reset, instances and steps (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/cartpole.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Velocities are unbounded and x/theta may pass the box on the final step.
  return pyenvpool::fuzz::RunOne<pyenvpool::CartPole>(data, size, /*check_bounds=*/false);
}
