// libFuzzer target: Bandit-v0 reset and steps (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/bandit.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::Bandit>(data, size, /*check_bounds=*/true);
}
