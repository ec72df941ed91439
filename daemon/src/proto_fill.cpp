#include "proto_fill.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include "pnn/common/hex.hpp"

namespace pnn::daemon::detail {

using drivers::Health;
using drivers::Lifecycle;

v1::Lifecycle to_proto(Lifecycle s) {
  switch (s) {
    case Lifecycle::kUnconfigured: return v1::UNCONFIGURED;
    case Lifecycle::kInactive: return v1::INACTIVE;
    case Lifecycle::kActive: return v1::ACTIVE;
    case Lifecycle::kFinalized: return v1::FINALIZED;
  }
  return v1::LIFECYCLE_UNSPECIFIED;
}

v1::Health to_proto(Health h) {
  switch (h) {
    case Health::kOk: return v1::HEALTH_OK;
    case Health::kWarning: return v1::HEALTH_WARNING;
    case Health::kFault: return v1::HEALTH_FAULT;
  }
  return v1::HEALTH_UNSPECIFIED;
}

v1::JobState to_proto(RunState s) { return static_cast<v1::JobState>(static_cast<int>(s)); }

namespace {
float f32_at_least(double v) {
  auto f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}
float f32_at_most(double v) {
  auto f = static_cast<float>(v);
  if (static_cast<double>(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}
}  // namespace

void fill_spec(const drivers::DeviceSpec& s, v1::DeviceSpec* out) {
  out->set_kind(s.kind);
  out->set_model(s.model);
  out->set_serial(s.serial);
  out->set_firmware(s.firmware);
  out->set_num_inputs(static_cast<std::uint32_t>(s.num_inputs));
  out->set_num_outputs(static_cast<std::uint32_t>(s.num_outputs));
  out->set_input_unit(s.input_unit);
  out->set_output_unit(s.output_unit);
  out->set_input_min(s.input_min);
  out->set_input_max(s.input_max);
  out->set_input_min_f32(f32_at_least(s.input_min));
  out->set_input_max_f32(f32_at_most(s.input_max));
  for (const auto& p : s.params) {
    auto* b = out->add_params();
    b->set_name(p.name);
    b->set_count(static_cast<std::uint32_t>(p.count));
    b->set_unit(p.unit);
    b->set_hard_min(p.hard_min);
    b->set_hard_max(p.hard_max);
    b->set_hard_min_f32(f32_at_least(p.hard_min));
    b->set_hard_max_f32(f32_at_most(p.hard_max));
    b->set_description(p.description);
  }
  out->set_output_noise_std(s.output_noise_std);
  out->set_max_batch(static_cast<std::uint32_t>(s.max_batch));
  out->set_num_params(static_cast<std::uint32_t>(s.num_params()));
}

void fill_run(const RunRecord& r, v1::RunInfo* out) {
  out->set_run_id(r.run_id);
  out->set_name(r.name);
  out->set_state(to_proto(r.state));
  out->set_started_ns(r.started_ns);
  out->set_finished_ns(r.finished_ns);
  out->set_epochs_done(static_cast<std::uint32_t>(r.epochs_done));
  out->set_checkpoint_path(r.checkpoint_path);
  out->set_summary_json(r.summary_json);
  for (const auto& s : r.device_serials) out->add_device_serials(s);
  out->set_message(r.message);
}

void fill_metric(const MetricRecord& m, v1::EpochMetrics* out) {
  out->set_phase(m.phase);
  out->set_epoch(static_cast<std::uint32_t>(m.epoch));
  out->set_train_loss(m.train_loss);
  out->set_train_accuracy(m.train_accuracy);
  out->set_test_accuracy(m.test_accuracy);
  out->set_seconds(m.seconds);
}

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string random_bytes(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string make_instance_id() {
  const std::string h = common::to_hex(random_bytes(16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace pnn::daemon::detail
