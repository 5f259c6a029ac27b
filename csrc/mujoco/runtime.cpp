// The MuJoCo runtime (see runtime.h): dlopen, version check, shared models.
#include "mujoco/runtime.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/errors.h"

namespace pyenvpool::mujoco {
namespace {

const char kInstallHint[] = "pip install \"pyenvpool[mujoco]\"";

std::string VersionText(int version) {
  // mjVERSION_HEADER is major * 1000000 + minor * 1000 + patch.
  return std::to_string(version / 1000000) + "." + std::to_string(version / 1000 % 1000) + "." +
         std::to_string(version % 1000);
}

struct Runtime {
  std::mutex mutex;
  bool loaded = false;
  Functions functions{};
  std::string assets_dir;
  std::map<std::string, std::weak_ptr<Model>> models;
};

Runtime& TheRuntime() {
  static Runtime* runtime = new Runtime();  // never destroyed: used until exit
  return *runtime;
}

// Warnings during model compilation (Gymnasium's models use the deprecated
// `settotalmass`) are expected; this thread skips them while it loads.
thread_local bool loading_model = false;

void PrintWarning(const char* message) {
  if (loading_model) return;
  std::fprintf(stderr, "MuJoCo warning: %s\n", message);
}

template <class F>
void Resolve(void* library, const char* name, F& slot) {
  void* symbol = dlsym(library, name);
  if (symbol == nullptr) {
    throw ValueError(std::string("the MuJoCo library has no function ") + name +
                     "; reinstall it: " + kInstallHint);
  }
  slot = reinterpret_cast<F>(symbol);
}

}  // namespace

std::string HeaderVersion() { return VersionText(mjVERSION_HEADER); }

void Load(const std::string& library, const std::string& assets_dir) {
  Runtime& rt = TheRuntime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  if (rt.loaded) return;
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw ValueError("cannot open the MuJoCo library " + library + ": " +
                     (why ? why : "unknown error") + "; reinstall it: " + kInstallHint);
  }
  Functions f{};
  try {
    Resolve(handle, "mj_version", f.mj_version);
    const int version = f.mj_version();
    if (version != mjVERSION_HEADER) {
      throw ValueError("pyenvpool's MuJoCo tasks were built for MuJoCo " + HeaderVersion() +
                       " but " + library + " is MuJoCo " + VersionText(version) +
                       "; install the matching version: " + kInstallHint);
    }
    Resolve(handle, "mj_loadXML", f.mj_loadXML);
    Resolve(handle, "mj_deleteModel", f.mj_deleteModel);
    Resolve(handle, "mj_makeData", f.mj_makeData);
    Resolve(handle, "mj_deleteData", f.mj_deleteData);
    Resolve(handle, "mj_resetData", f.mj_resetData);
    Resolve(handle, "mj_forward", f.mj_forward);
    Resolve(handle, "mj_step", f.mj_step);
    Resolve(handle, "mj_rnePostConstraint", f.mj_rnePostConstraint);
    Resolve(handle, "mj_stateSize", f.mj_stateSize);
    Resolve(handle, "mj_getState", f.mj_getState);
    Resolve(handle, "mj_setState", f.mj_setState);
    Resolve(handle, "mj_name2id", f.mj_name2id);
    void (**user_warning)(const char*) = nullptr;
    Resolve(handle, "mju_user_warning", user_warning);
    if (*user_warning == nullptr) *user_warning = &PrintWarning;
  } catch (...) {
    dlclose(handle);
    throw;
  }
  rt.functions = f;
  rt.assets_dir = assets_dir;
  rt.loaded = true;
}

bool Loaded() {
  Runtime& rt = TheRuntime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  return rt.loaded;
}

const Functions& Api() {
  Runtime& rt = TheRuntime();
  // `loaded` only goes from false to true, under the mutex, before any task
  // exists; tasks call Api() after their constructor saw it loaded.
  std::lock_guard<std::mutex> lock(rt.mutex);
  if (!rt.loaded) {
    throw ValueError(std::string("MuJoCo is not loaded; the MuJoCo tasks need the mujoco extra: ") +
                     kInstallHint);
  }
  return rt.functions;
}

std::shared_ptr<Model> Model::Get(const std::string& task_id, const std::string& file) {
  Runtime& rt = TheRuntime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  if (!rt.loaded) {
    throw ValueError(task_id + " needs MuJoCo, which is not installed or not loaded: " +
                     kInstallHint);
  }
  const std::string path = rt.assets_dir + "/" + file;
  if (auto cached = rt.models[path].lock()) return cached;
  char error[1000] = "";
  loading_model = true;
  mjModel* m = rt.functions.mj_loadXML(path.c_str(), nullptr, error, sizeof(error));
  loading_model = false;
  if (m == nullptr) throw ValueError(task_id + ": cannot load the model " + path + ": " + error);
  std::shared_ptr<Model> model(new Model(m));
  rt.models[path] = model;
  return model;
}

Model::~Model() {
  const Functions& f = TheRuntime().functions;
  for (mjData* d : all_) f.mj_deleteData(d);
  f.mj_deleteModel(m_);
}

mjData* Model::Borrow() const {
  // The scratch this thread had last is likely still in its core's cache
  // (an mjData's working set is tens of kB): take it again when it is free.
  thread_local const mjData* last = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      auto it = std::find(free_.begin(), free_.end(), last);
      if (it == free_.end()) it = free_.end() - 1;
      mjData* d = *it;
      free_.erase(it);
      last = d;
      return d;
    }
  }
  mjData* d = TheRuntime().functions.mj_makeData(m_);
  if (d == nullptr) throw std::bad_alloc();
  std::lock_guard<std::mutex> lock(mutex_);
  all_.push_back(d);
  last = d;
  return d;
}

void Model::GiveBack(mjData* d) const {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(d);
}

}  // namespace pyenvpool::mujoco
