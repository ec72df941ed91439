#pragma once
/// A small persistent thread pool for batch-parallel work (no per-call thread creation).
#include <cstddef>
#include <functional>

namespace pnn::digital_twin {

/// Number of worker threads the pool uses (≥ 1). Defaults to the number of hardware threads;
/// the environment variable PNN_THREADS overrides it (read once, at first use).
int num_threads();

/// Calls fn(i) for i in [0, n), spreading the calls over the pool; the calling thread takes part.
/// Returns when all calls are done. The first exception thrown by any call is rethrown here.
/// Nested calls from inside a pool task run serially on the calling thread (no deadlock).
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

}  // namespace pnn::digital_twin
