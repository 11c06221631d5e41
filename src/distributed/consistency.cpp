// The start-up check that every rank trains the same model (include/typegrad/distributed/consistency.hpp).
#include "typegrad/distributed/consistency.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "mpi_state.hpp"

namespace typegrad::distributed {

namespace {
// FNV-1a over values written as fixed-width little-endian integers and raw characters, so equal
// inputs hash equal whatever the platform's struct layout.
struct fnv1a {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void byte(unsigned char b) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  void number(std::uint64_t v) {
    for (int k = 0; k < 8; ++k) byte(static_cast<unsigned char>(v >> (8 * k)));
  }
  void text(std::string_view s) {
    number(s.size());
    for (char c : s) byte(static_cast<unsigned char>(c));
  }
};

// One line per tensor, "name\x1f(extents)", so that a rank can find the first difference.
std::vector<std::string> lines_of(std::span<const tensor_layout> tensors) {
  std::vector<std::string> lines;
  for (const auto& t : tensors) lines.push_back(fmt::format("{}\x1f{}", t.name, t.dims));
  return lines;
}
std::string join(const std::vector<std::string>& lines, char sep) {
  std::string out;
  for (const auto& l : lines) (out += l) += sep;
  return out;
}
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::size_t next; (next = text.find(sep, at)) != std::string::npos; at = next + 1)
    out.push_back(text.substr(at, next - at));
  return out;
}
std::pair<std::string, std::string> name_and_shape(const std::string& line) {
  const auto cut = line.find('\x1f');
  return {line.substr(0, cut), line.substr(cut + 1)};
}

// What rank r's layout (lines, then the program line) does differently from rank 0's, or "".
std::string difference(int r, const std::vector<std::string>& mine, const std::vector<std::string>& ref) {
  // The last line is "program <fingerprint> <nodes>"; the others are tensors.
  const std::size_t n = mine.size() - 1, n0 = ref.size() - 1;
  for (std::size_t k = 0; k < std::min(n, n0); ++k) {
    if (mine[k] == ref[k]) continue;
    const auto [name, dims] = name_and_shape(mine[k]);
    const auto [name0, dims0] = name_and_shape(ref[k]);
    if (name == name0) return fmt::format("rank {}: '{}' has shape {}, rank 0's {}", r, name, dims, dims0);
    return fmt::format("rank {}: tensor {} is '{}' {}, rank 0's is '{}' {}", r, k, name, dims, name0, dims0);
  }
  if (n != n0) {
    const auto& longer = n > n0 ? mine : ref;
    return fmt::format("rank {}: {} tensors, rank 0 {} (the first unmatched: '{}' on rank {})", r, n, n0,
                       name_and_shape(longer[std::min(n, n0)]).first, n > n0 ? r : 0);
  }
  if (mine.back() != ref.back()) {  // "program <fingerprint> <nodes>"
    return fmt::format("rank {}: the program differs from rank 0's ({} nodes against {})", r,
                       split(mine.back() + ' ', ' ').at(2), split(ref.back() + ' ', ' ').at(2));
  }
  return {};
}
}  // namespace

std::uint64_t program_fingerprint(std::span<const runtime::node_spec> nodes) {
  fnv1a f;
  f.number(nodes.size());
  for (const auto& n : nodes) {
    f.number(static_cast<std::uint64_t>(n.kind));
    f.text(n.label);
    f.number(n.rank);
    f.number(n.inputs.size());
    for (auto i : n.inputs) f.number(i);
  }
  return f.h;
}

void check_consistent(const world& w, std::span<const tensor_layout> tensors, std::uint64_t program,
                      std::size_t program_nodes, std::string_view what) {
  if (w.size() == 1) return;
  fnv1a f;
  f.number(tensors.size());
  for (const auto& t : tensors) {
    f.text(t.name);
    f.number(t.dims.rank());
    for (auto d : t.dims.dims()) f.number(d);
  }
  // Every rank learns the minimum and the maximum (as the minimum of the complement) of both
  // hashes; they agree everywhere exactly when the minimum equals the maximum.
  std::uint64_t v[4] = {f.h, program, ~f.h, ~program};
  {
    auto& s = w.internal();
    std::lock_guard guard(s.lock);
    MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_UINT64_T, MPI_MIN, s.comm);
  }
  if (v[0] == ~v[2] && v[1] == ~v[3]) return;

  // They differ: every rank gets every layout and composes the same message.
  auto lines = lines_of(tensors);
  lines.push_back(fmt::format("program {:016x} {}", program, program_nodes));
  const auto all = w.all_gather(join(lines, '\n'));
  const auto ref = split(all[0], '\n');
  std::string message;
  for (std::size_t r = 1; r < all.size(); ++r)
    if (auto d = difference(int(r), split(all[r], '\n'), ref); !d.empty()) message += (message.empty() ? "" : "; ") + d;
  throw distributed_error(fmt::format("{}: the ranks do not hold the same model: {}", what,
                                      message.empty() ? "their layouts hash differently" : message));
}

}  // namespace typegrad::distributed
