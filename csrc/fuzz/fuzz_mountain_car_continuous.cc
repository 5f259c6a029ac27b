// libFuzzer target: MountainCarContinuous-v0 reset, instances and steps with
// arbitrary finite float32 forces, huge ones included (see fuzz_task.h): the
// reward must stay finite (it saturates at -FLT_MAX).
#include "fuzz/fuzz_task.h"
#include "tasks/mountain_car_continuous.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::MountainCarContinuous>(data, size,
                                                                   /*check_bounds=*/true);
}
