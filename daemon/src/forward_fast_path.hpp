#pragma once
// The Forward fast path's prediction (forward_rpc.cpp, forward_inline; docs/daemon.md): whether
// a batch of `rows` is expected to finish within forward.inline_max_us on the event loop, from
// the device's last measured time per row (negative: nothing measured yet). A pure function, so
// that the rule is tested without timing anything.
#include <algorithm>
#include <cstdint>

namespace pnn::daemon::detail {

inline bool fits_inline(double last_ns_per_row, double rows, std::uint32_t inline_max_us) {
  if (inline_max_us == 0 || !(last_ns_per_row >= 0.0)) return false;  // off, or no timing (or NaN)
  return last_ns_per_row * std::max(rows, 1.0) <= 1e3 * static_cast<double>(inline_max_us);
}

}  // namespace pnn::daemon::detail
