// libFuzzer target: Acrobot-v1 reset, instances and steps, in both dynamics
// variants (the first input byte picks "book" or "nips"; see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/acrobot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  pyenvpool::Kwargs kwargs;
  kwargs.Set("book_or_nips", std::string(data[0] & 1 ? "nips" : "book"));
  return pyenvpool::fuzz::RunOne<pyenvpool::Acrobot>(data + 1, size - 1, /*check_bounds=*/true,
                                                     kwargs);
}
