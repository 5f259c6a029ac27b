// libFuzzer target: MountainCar-v0 reset, instances and steps (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/mountain_car.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::MountainCar>(data, size, /*check_bounds=*/true);
}
