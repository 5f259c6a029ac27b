// The MuJoCo runtime: the C library of the `mujoco` wheel, opened at run time.
//
// pyenvpool compiles its MuJoCo tasks against the MuJoCo headers (from the
// `mujoco-core` build requirement) but does not link libmujoco. The Python
// package finds the library inside the installed `mujoco` package when a
// MuJoCo task is first made and calls Load(); tasks then reach MuJoCo only
// through Api(). So `import pyenvpool` never needs MuJoCo, installing or
// removing the `mujoco` extra needs no rebuild, and the library is found
// wherever pip put it (see the build decision in CMakeLists.txt).
//
// Invariants:
// - Load() succeeds at most once per process; the library stays open until
//   exit. A library whose mj_version() differs from the headers' is refused
//   (mjModel and mjData layouts change between MuJoCo releases).
// - Api() throws the "install the extra" error until Load() has succeeded.
// - MuJoCo's warnings go to stderr (never to MUJOCO_LOG.TXT in the working
//   directory) unless something else installed a warning handler first.
#pragma once

#include <mujoco/mujoco.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pyenvpool::mujoco {

// The MuJoCo functions the tasks call, resolved from the opened library.
struct Functions {
  int (*mj_version)();
  mjModel* (*mj_loadXML)(const char*, const mjVFS*, char*, int);
  void (*mj_deleteModel)(mjModel*);
  mjData* (*mj_makeData)(const mjModel*);
  void (*mj_deleteData)(mjData*);
  void (*mj_resetData)(const mjModel*, mjData*);
  void (*mj_forward)(const mjModel*, mjData*);
  void (*mj_step)(const mjModel*, mjData*);
  void (*mj_rnePostConstraint)(const mjModel*, mjData*);
  int (*mj_stateSize)(const mjModel*, int);
  void (*mj_getState)(const mjModel*, const mjData*, mjtNum*, int);
  void (*mj_setState)(const mjModel*, mjData*, const mjtNum*, int);
  int (*mj_name2id)(const mjModel*, int, const char*);
};

// "4.0.1": the MuJoCo version of the headers this build was compiled with.
std::string HeaderVersion();

// Opens `library` (a path to libmujoco) and remembers `assets_dir`, where the
// tasks' XML models are. Throws ValueError if the library cannot be opened,
// lacks a function, or is another MuJoCo version. A second call is a no-op.
void Load(const std::string& library, const std::string& assets_dir);
bool Loaded();

// The functions; throws ValueError naming the `mujoco` extra before Load().
const Functions& Api();

// A compiled model, shared read-only by every env of every pool that uses the
// same XML file (loaded once per process), with the mjData scratch objects
// that steps borrow.
class Model {
 public:
  // `file`: an XML file in the assets directory. Throws ValueError naming
  // `task_id` when MuJoCo is not loaded or the model does not compile.
  static std::shared_ptr<Model> Get(const std::string& task_id, const std::string& file);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const mjModel* m() const { return m_; }

  // A scratch mjData, borrowed for one call and handed back on destruction.
  // Whatever it held before is overwritten by the borrower (mj_setState or
  // mj_resetData), so nothing passes from one borrower to the next.
  class Scratch {
   public:
    explicit Scratch(const Model& model) : model_(model), d_(model.Borrow()) {}
    ~Scratch() { model_.GiveBack(d_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    mjData* get() const { return d_; }
    mjData* operator->() const { return d_; }

   private:
    const Model& model_;
    mjData* d_;
  };

 private:
  explicit Model(mjModel* m) : m_(m) {}
  mjData* Borrow() const;
  void GiveBack(mjData* d) const;

  mjModel* m_;
  mutable std::mutex mutex_;
  mutable std::vector<mjData*> free_;  // scratch data not borrowed now
  mutable std::vector<mjData*> all_;
};

}  // namespace pyenvpool::mujoco
