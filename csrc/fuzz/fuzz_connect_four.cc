// libFuzzer target: ConnectFour-v0 reset, loaded positions and moves (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/connect_four.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pyenvpool::fuzz::RunOne<pyenvpool::ConnectFour>(data, size, /*check_bounds=*/true);
}
