// libFuzzer target: Squared-v0 reset and steps (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/squared.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::Squared>(data, size, /*check_bounds=*/true);
}
