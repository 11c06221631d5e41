#pragma once
// Internal to src/distributed/: the MPI side of distributed::world. Only these sources include
// <mpi.h>; the public headers do not.
#include <mpi.h>

#include <climits>
#include <cstddef>
#include <mutex>

#include "typegrad/distributed/world.hpp"

namespace typegrad::distributed {

struct world::state {
  bool owner = false;  // this world initialised MPI and finalises it
  int rank = 0, size = 1;
  int thread_level = MPI_THREAD_SINGLE;
  // A duplicate of MPI_COMM_WORLD: typegrad's collectives never match a user's by accident.
  MPI_Comm comm = MPI_COMM_NULL;
  mutable std::mutex lock;
};

namespace detail {
// MPI counts are ints: calls split larger buffers into pieces of at most this many elements.
inline constexpr std::size_t max_count = INT_MAX;

template <class T>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
inline MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
}  // namespace detail

}  // namespace typegrad::distributed
