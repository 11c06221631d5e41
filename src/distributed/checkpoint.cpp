// Rank 0 does, every rank learns the outcome (include/typegrad/distributed/checkpoint.hpp).
#include "typegrad/distributed/checkpoint.hpp"

#include <exception>
#include <string>

#include <fmt/format.h>

namespace typegrad::distributed::detail {

void on_root(const world& w, const std::function<void()>& fn, int root) {
  // The outcome: 0 done, 1 io_error, 2 data_error, 3 another exception; then root's message.
  std::exception_ptr failure;
  int kind = 0;
  std::string message;
  if (w.rank() == root) {
    try {
      fn();
    } catch (const io_error& e) {
      failure = std::current_exception();
      kind = 1;
      message = e.what();
    } catch (const data_error& e) {
      failure = std::current_exception();
      kind = 2;
      message = e.what();
    } catch (const std::exception& e) {
      failure = std::current_exception();
      kind = 3;
      message = e.what();
    } catch (...) {
      failure = std::current_exception();
      kind = 3;
      message = "an exception that is not a std::exception";
    }
  }
  w.broadcast_bytes(&kind, sizeof kind, root);
  if (kind == 0) return;
  w.broadcast(message, root);
  if (failure) std::rethrow_exception(failure);
  message = fmt::format("rank {}: {}", root, message);
  if (kind == 1) throw io_error(message);
  if (kind == 2) throw data_error(message);
  throw distributed_error(message);
}

void broadcast_metadata(const world& w, train::checkpoint_metadata& metadata, int root) {
  // key \0 value \0 ...
  std::string text;
  if (w.rank() == root)
    for (const auto& [k, v] : metadata) {
      text += k;
      text += '\0';
      text += v;
      text += '\0';
    }
  w.broadcast(text, root);
  if (w.rank() == root) return;
  metadata.clear();
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t key_end = text.find('\0', at), value_end = text.find('\0', key_end + 1);
    metadata.emplace(text.substr(at, key_end - at), text.substr(key_end + 1, value_end - key_end - 1));
    at = value_end + 1;
  }
}

}  // namespace typegrad::distributed::detail
