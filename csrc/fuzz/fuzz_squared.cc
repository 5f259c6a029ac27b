// libFuzzer target: Squared-v0 reset and steps; the first input byte picks the
// action space, Discrete(8) or multi_discrete's MultiDiscrete([3, 3]) (see
// fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/squared.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  pyenvpool::Kwargs kwargs;
  kwargs.Set("multi_discrete", (data[0] & 1) != 0);
  return pyenvpool::fuzz::RunOne<pyenvpool::Squared>(data + 1, size - 1, /*check_bounds=*/true,
                                                     kwargs);
}
