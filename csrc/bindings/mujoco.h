// pyenvpool._core's MuJoCo functions, present only in builds with the MuJoCo
// tasks (PYENVPOOL_WITH_MUJOCO): load_mujoco(library, assets_dir), which
// pyenvpool/_mujoco.py calls before the first MuJoCo pool, and
// mujoco_version, the MuJoCo version of the headers the tasks were built with.
#pragma once

#include <pybind11/pybind11.h>

namespace pyenvpool::bind {

void RegisterMujoco(pybind11::module_& m);

}  // namespace pyenvpool::bind
