// See mujoco.h.
#include "bindings/mujoco.h"

#include <string>

#include "mujoco/runtime.h"

namespace pyenvpool::bind {

void RegisterMujoco(pybind11::module_& m) {
  m.def(
      "load_mujoco",
      [](const std::string& library, const std::string& assets_dir) {
        pybind11::gil_scoped_release release;
        mujoco::Load(library, assets_dir);
      },
      pybind11::arg("library"), pybind11::arg("assets_dir"));
  m.def("mujoco_loaded", &mujoco::Loaded);
  m.attr("mujoco_version") = mujoco::HeaderVersion();
}

}  // namespace pyenvpool::bind
