#pragma once
// Daemon state → API messages: specs, runs, metrics, lifecycle and health enums. Pure functions.
#include <cstdint>
#include <string>

#include "pnn/daemon/protocol.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/drivers/device_spec.hpp"
#include "pnn/drivers/physical_system.hpp"

namespace pnn::daemon::detail {

v1::Lifecycle to_proto(drivers::Lifecycle s);
v1::Health to_proto(drivers::Health h);
v1::JobState to_proto(RunState s);
// With float32 bounds on the inside of each limit, so a float32 client that clamps to them is
// never refused for rounding (the double limits stay exact beside them).
void fill_spec(const drivers::DeviceSpec& s, v1::DeviceSpec* out);
void fill_run(const RunRecord& r, v1::RunInfo* out);
void fill_metric(const MetricRecord& m, v1::EpochMetrics* out);

std::int64_t wall_ns();
std::int64_t mono_ns();
// `n` random bytes (lease tokens); not for keys.
std::string random_bytes(std::size_t n);
// A UUID-shaped id, new on every start.
std::string make_instance_id();

}  // namespace pnn::daemon::detail
