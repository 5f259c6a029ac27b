// libFuzzer target: Pendulum-v1 reset, instances and steps with arbitrary
// finite float32 torques, huge ones included (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/pendulum.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::Pendulum>(data, size, /*check_bounds=*/true);
}
