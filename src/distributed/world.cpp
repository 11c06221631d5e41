// distributed::world: MPI initialisation, finalisation and the small collectives typegrad needs
// (include/typegrad/distributed/world.hpp).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <fmt/format.h>

#include "mpi_state.hpp"

namespace typegrad::distributed {

namespace {
void initialise(world::state& s, int* argc, char*** argv) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) throw distributed_error("distributed::world: MPI was already finalised in this process; create one world for the whole run");
  if (initialized) {
    MPI_Query_thread(&s.thread_level);
  } else {
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &s.thread_level);
    s.owner = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &s.comm);
  MPI_Comm_rank(s.comm, &s.rank);
  MPI_Comm_size(s.comm, &s.size);
}
}  // namespace

world::world() : s_(std::make_unique<state>()) { initialise(*s_, nullptr, nullptr); }
world::world(int& argc, char**& argv) : s_(std::make_unique<state>()) { initialise(*s_, &argc, &argv); }

world::~world() {
  // Unwinding from an exception: this rank will not reach the other ranks' next collective, and
  // MPI_Finalize could wait for them forever. End the whole job instead.
  if (std::uncaught_exceptions() > 0 && s_->size > 1) {
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_free(&s_->comm);
  if (s_->owner) MPI_Finalize();
}

int world::rank() const { return s_->rank; }
int world::size() const { return s_->size; }
bool world::overlap_supported() const { return s_->thread_level >= MPI_THREAD_SERIALIZED; }
std::mutex& world::lock() const { return s_->lock; }

void world::barrier() const {
  std::lock_guard guard(s_->lock);
  MPI_Barrier(s_->comm);
}

void world::all_sum(std::span<double> values) const {
  std::lock_guard guard(s_->lock);
  for (std::size_t at = 0; at < values.size(); at += detail::max_count) {
    const int n = int(std::min(detail::max_count, values.size() - at));
    MPI_Allreduce(MPI_IN_PLACE, values.data() + at, n, MPI_DOUBLE, MPI_SUM, s_->comm);
  }
}
double world::all_sum(double value) const {
  all_sum(std::span<double>(&value, 1));
  return value;
}

void world::broadcast_bytes(void* data, std::size_t bytes, int root) const {
  std::lock_guard guard(s_->lock);
  auto* p = static_cast<char*>(data);
  for (std::size_t at = 0; at < bytes; at += detail::max_count)
    MPI_Bcast(p + at, int(std::min(detail::max_count, bytes - at)), MPI_BYTE, root, s_->comm);
}

void world::broadcast(std::string& text, int root) const {
  unsigned long long n = text.size();
  broadcast_bytes(&n, sizeof n, root);
  text.resize(std::size_t(n));
  broadcast_bytes(text.data(), text.size(), root);
}

std::vector<std::string> world::all_gather(const std::string& text) const {
  std::lock_guard guard(s_->lock);
  // Lengths first, as 64-bit values, so that every rank sees the same total and refuses alike.
  const std::size_t ranks = std::size_t(s_->size);
  std::vector<long long> lengths(ranks);
  const long long mine = (long long)text.size();
  MPI_Allgather(&mine, 1, MPI_LONG_LONG, lengths.data(), 1, MPI_LONG_LONG, s_->comm);
  std::vector<int> counts(ranks), offsets(ranks);
  long long total = 0;
  for (std::size_t r = 0; r < ranks; ++r) {
    offsets[r] = int(std::min<long long>(total, INT_MAX));
    counts[r] = int(std::min<long long>(lengths[r], INT_MAX));
    total += lengths[r];
  }
  if (total > (long long)detail::max_count)
    throw distributed_error(fmt::format("distributed::world::all_gather: {} bytes in all exceed MPI's int count", total));
  std::string all(std::size_t(total), '\0');
  MPI_Allgatherv(text.data(), int(mine), MPI_CHAR, all.data(), counts.data(), offsets.data(), MPI_CHAR, s_->comm);
  std::vector<std::string> out;
  for (std::size_t r = 0; r < ranks; ++r) out.push_back(all.substr(std::size_t(offsets[r]), std::size_t(counts[r])));
  return out;
}

void world::abort(int code) const {
  std::fflush(stdout);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // (MPI_Abort does not return)
}

}  // namespace typegrad::distributed
