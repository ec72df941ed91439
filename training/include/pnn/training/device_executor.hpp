#pragma once
/// Where a training job's calls on a device run (Network, calibrate_device, the job runner).
#include <functional>
#include <optional>
#include <stdexcept>

namespace pnn::training {

/// Where a device's calls run: the calling thread when empty; pnnd passes each device's execution
/// context, so that a job and a client never drive one device at the same time.
using DeviceExecutor = std::function<void(const std::function<void()>& call)>;

/// Runs `call` through `executor` (or directly) and returns its result.
template <class F>
auto on_device(const DeviceExecutor& executor, F&& call) -> decltype(call()) {
  if (!executor) return call();
  std::optional<decltype(call())> out;
  executor([&] { out.emplace(call()); });
  if (!out) throw std::runtime_error("the device's executor did not run the call");
  return std::move(*out);
}

}  // namespace pnn::training
