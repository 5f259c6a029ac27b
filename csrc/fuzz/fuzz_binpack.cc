// libFuzzer target: BinPack-v0 reset, instances and steps (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/binpack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::BinPack>(data, size, /*check_bounds=*/true);
}
