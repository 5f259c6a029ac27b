// libFuzzer target: Memory-v0 reset, instances (cues) and steps; the first two
// input bytes pick num_cues (2..64) and delay (0..31) (see fuzz_task.h).
#include "fuzz/fuzz_task.h"
#include "tasks/memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  pyenvpool::Kwargs kwargs;
  kwargs.Set("num_cues", int64_t{2 + data[0] % 63});
  kwargs.Set("delay", int64_t{data[1] % 32});
  return pyenvpool::fuzz::RunOne<pyenvpool::Memory>(data + 2, size - 2, /*check_bounds=*/true,
                                                    kwargs);
}
