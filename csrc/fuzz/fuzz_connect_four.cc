// libFuzzer target: ConnectFour-v0 reset, loaded positions and moves (see fuzz_task.h).
// The first input byte picks the configuration: odd bytes turn on random
// openings (up to byte / 2 % 42 moves) and random-move noise.
#include "fuzz/fuzz_task.h"
#include "tasks/connect_four.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pyenvpool::Kwargs kwargs;
  if (size == 0) return 0;
  if (data[0] & 1) {
    kwargs.Set("random_opening_moves", static_cast<int64_t>((data[0] >> 1) % 42));
    kwargs.Set("random_move_probability", 0.25);
  }
  return pyenvpool::fuzz::RunOne<pyenvpool::ConnectFour>(data + 1, size - 1,
                                                         /*check_bounds=*/true, kwargs);
}
