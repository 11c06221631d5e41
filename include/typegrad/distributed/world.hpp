#pragma once
// The MPI job a data-parallel training run is part of (typegrad::distributed, optional: built when
// CMake finds MPI). No MPI header is needed to use it.
//
//   int main(int argc, char** argv) {
//     distributed::world world(argc, argv);     // MPI_Init_thread; MPI_Finalize at the end
//     if (world.root()) fmt::print("{} ranks\n", world.size());
//
// Launched by mpirun (`mpirun -np 4 ./train`) each process is one rank; launched alone it is a
// world of one rank, and everything below works (no communication happens).
//
// Threads: typegrad asks for MPI_THREAD_SERIALIZED and makes every MPI call of its own under one
// lock (world::lock()), from the thread that needs it: a gradient all-reduce is started by the
// TBB thread that finished the gradient, and a progress thread of the gradient_reducer drives it
// while the backward pass runs (docs/distributed.md says why). Code of your own that calls MPI
// while a reducer's step is in flight must hold world::lock() too.
//
// Failure: MPI has no recovery from a lost rank; mpirun aborts the job when one dies. A world
// destroyed by an exception's stack unwinding calls MPI_Abort rather than MPI_Finalize (which
// would wait for the other ranks forever), so an uncaught error on one rank ends the whole job.
// Errors that every rank sees alike (distributed_error, a bad checkpoint) are thrown on every
// rank instead, and can be caught.
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "typegrad/core/errors.hpp"
#include "typegrad/core/shape.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad::distributed {

class world {
 public:
  // Initialises MPI unless something else has (then this world does not finalise it either).
  world();
  world(int& argc, char**& argv);
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  int rank() const;
  int size() const;
  bool root() const { return rank() == 0; }
  // Whether MPI gave the thread level that overlapping all-reduces with the backward pass needs
  // (MPI_THREAD_SERIALIZED); without it, a gradient_reducer starts them in wait().
  bool overlap_supported() const;
  // The lock around every MPI call typegrad makes (see above).
  std::mutex& lock() const;

  void barrier() const;
  // Sums over all ranks, in place: every rank gets the sums.
  void all_sum(std::span<double> values) const;
  double all_sum(double value) const;
  // Copies root's values to every rank; every rank must give the same shape.
  template <Scalar T>
  void broadcast(view<T> values, int root = 0) const {
    broadcast_bytes(values.data, values.size() * sizeof(T), root);
  }
  void broadcast(std::string& text, int root = 0) const;
  void broadcast_bytes(void* data, std::size_t bytes, int root = 0) const;
  // Gathers every rank's text; the result is indexed by rank, on every rank.
  std::vector<std::string> all_gather(const std::string& text) const;
  // Ends the whole job (MPI_Abort).
  [[noreturn]] void abort(int code = 1) const;

  // The MPI communicator and state, for typegrad's own sources (src/distributed/).
  struct state;
  state& internal() const { return *s_; }

 private:
  std::unique_ptr<state> s_;
};

}  // namespace typegrad::distributed
