#include "firmware_emulator.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "pnn/drivers/format.hpp"
#include "pnn/drivers/framed_device.hpp"

namespace pnn::drivers::sim {
namespace {

namespace fw = firmware_iface;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Vector closest_to_zero(const Vector& lo, const Vector& hi) {
  return Vector::Zero(lo.size()).cwiseMax(lo).cwiseMin(hi);
}

}  // namespace

FirmwareEmulator::FirmwareEmulator(DeviceSpec spec, RealityFactory make_reality, FaultPlan faults)
    : spec_(std::move(spec)),
      make_reality_(std::move(make_reality)),
      safe_theta_(closest_to_zero(spec_.param_min(), spec_.param_max())),
      theta_min_(spec_.param_min()),
      theta_max_(spec_.param_max()),
      faults_(faults),
      decoder_(fw::FrameDecoderOptions{.max_payload_bytes = max_frame_payload(spec_)}) {
  std::lock_guard lock(mutex_);
  reset_state();
}

void FirmwareEmulator::reset_state() {
  reality_ = make_reality_();
  state_ = fw::DeviceState::kIdle;
  theta_ = safe_theta_;
  batch_.resize(0, 0);
  outputs_.resize(0, 0);
  volatile_ = {};
}

bool FirmwareEmulator::connected(fw::Clock::time_point now) {
  const bool up = faults_.connected(now);
  std::lock_guard lock(mutex_);
  if (!up) was_unplugged_ = true;
  return up;
}

void FirmwareEmulator::on_open(fw::Clock::time_point) {
  std::lock_guard lock(mutex_);
  if (was_unplugged_) {
    // Re-plugged: the board was power-cycled (the reset was counted when it went away).
    was_unplugged_ = false;
    reset_state();
    decoder_.reset();
  }
}

void FirmwareEmulator::on_clear() {
  std::lock_guard lock(mutex_);
  decoder_.flush();
}

FirmwareStats FirmwareEmulator::stats() const {
  FirmwareStats s;
  {
    std::lock_guard lock(mutex_);
    s = stats_;
    s.frames_rejected = stats_.frames_rejected + decoder_.stats().errors();
  }
  const FaultStats f = faults_.stats();
  s.dropped = f.dropped;
  s.corrupted = f.corrupted;
  s.delayed = f.delayed;
  s.stalls = f.stalls;
  s.nans = f.nans;
  s.unplugs = f.unplugs;
  s.truncated = f.truncated;
  return s;
}

Vector FirmwareEmulator::applied_theta() const {
  std::lock_guard lock(mutex_);
  return theta_;
}

void FirmwareEmulator::receive(std::span<const std::uint8_t> bytes, fw::Clock::time_point now,
                               std::deque<fw::DeviceOutput>& out) {
  std::lock_guard lock(mutex_);
  decoder_.feed(bytes);
  while (auto frame = decoder_.next()) {
    ++stats_.frames;
    const std::uint32_t seq = frame->header.seq;
    const auto decision = faults_.on_command(now);
    if (decision.reset) {
      // The board reboots before it executes this command: θ, batch and outputs are lost.
      reset_state();
      ++stats_.resets;
    }
    ++stats_.commands;
    if (decision.lost) continue;
    auto command = fw::decode_message(*frame);
    Message reply = command ? execute(*command, decision.nan)
                            : error(fw::DeviceError::kMalformed,
                                    "payload of " + std::string(fw::to_string(frame->header.type)) +
                                        " does not decode: " + command.error().message());
    if (std::holds_alternative<fw::ErrorReply>(reply)) {
      ++stats_.errors_sent;
      ++volatile_.commands_failed;
    } else {
      ++volatile_.commands_ok;
    }
    if (decision.drop) continue;
    scratch_.clear();
    if (const auto* o = std::get_if<fw::OutputsReply>(&reply)) {
      fw::encode_batch_message(fw::MessageType::kOutputsReply, seq, o->rows, o->cols, o->data,
                               scratch_);
    } else {
      fw::encode_message(reply, seq, scratch_);
    }
    if (std::holds_alternative<fw::SpikeRunReply>(reply)) faults_.truncate_reply(scratch_);
    if (decision.corrupt) faults_.corrupt_reply(scratch_);
    out.push_back({scratch_, decision.ready_at});
  }
}

FirmwareEmulator::Message FirmwareEmulator::error(fw::DeviceError code, std::string text) {
  volatile_.error_code = static_cast<std::int32_t>(code);
  return fw::ErrorReply{static_cast<std::int32_t>(code), std::move(text)};
}

FirmwareEmulator::Message FirmwareEmulator::execute(const Message& command, bool inject_nan) {
  using fw::DeviceError;
  using fw::DeviceState;
  if (std::holds_alternative<fw::IdentifyRequest>(command)) {
    return fw::IdentifyReply{spec_.serial, spec_.model, spec_.firmware};
  }
  if (std::holds_alternative<fw::CapabilitiesRequest>(command)) {
    fw::CapabilitiesReply caps;
    caps.num_inputs = static_cast<std::uint32_t>(spec_.num_inputs);
    caps.num_outputs = static_cast<std::uint32_t>(spec_.num_outputs);
    caps.num_params = static_cast<std::uint32_t>(spec_.num_params());
    caps.max_batch = static_cast<std::uint32_t>(spec_.max_batch);
    for (const auto& b : spec_.params) {
      caps.blocks.push_back({b.name, static_cast<std::uint32_t>(b.count), b.hard_min, b.hard_max});
    }
    return caps;
  }
  if (const auto* set = std::get_if<fw::SetParameters>(&command)) {
    if (state_ == DeviceState::kRunning) return error(DeviceError::kBusy, "a run is in progress");
    if (static_cast<Index>(set->theta.size()) != spec_.num_params()) {
      return error(DeviceError::kShape, "expected " + std::to_string(spec_.num_params()) +
                                            " parameters, got " + std::to_string(set->theta.size()));
    }
    for (std::size_t i = 0; i < set->theta.size(); ++i) {
      const double v = set->theta[i];
      const auto at = static_cast<Index>(i);
      if (!std::isfinite(v)) {
        ++stats_.limit_violations;
        return error(DeviceError::kNonFinite, "parameter " + spec_.param_name(at) + " is not finite");
      }
      if (v < theta_min_[at] || v > theta_max_[at]) {
        ++stats_.limit_violations;
        std::ostringstream m;
        m << "parameter " << spec_.param_name(at) << " = " << format_shortest(v) << " outside ["
          << format_shortest(theta_min_[at]) << ", " << format_shortest(theta_max_[at])
          << "]: refused";
        return error(DeviceError::kOutOfLimits, m.str());
      }
    }
    theta_ = Eigen::Map<const Vector>(set->theta.data(), spec_.num_params());
    return fw::Ack{fw::MessageType::kSetParameters};
  }
  if (const auto* load = std::get_if<fw::LoadInputBatch>(&command)) {
    if (state_ == DeviceState::kRunning) return error(DeviceError::kBusy, "a run is in progress");
    if (static_cast<Index>(load->cols) != spec_.num_inputs || load->rows == 0 ||
        (spec_.max_batch > 0 && static_cast<Index>(load->rows) > spec_.max_batch)) {
      return error(DeviceError::kShape, "batch " + std::to_string(load->rows) + "x" +
                                            std::to_string(load->cols) + " does not fit 1.." +
                                            std::to_string(spec_.max_batch) + " x " +
                                            std::to_string(spec_.num_inputs));
    }
    for (double v : load->data) {
      if (!std::isfinite(v) || v < spec_.input_min || v > spec_.input_max) {
        ++stats_.limit_violations;
        return error(std::isfinite(v) ? DeviceError::kOutOfLimits : DeviceError::kNonFinite,
                     "an input is outside the actuator range: refused");
      }
    }
    batch_ = Eigen::Map<const RowMatrix>(load->data.data(), load->rows, load->cols);
    outputs_.resize(0, 0);
    state_ = DeviceState::kLoaded;
    return fw::Ack{fw::MessageType::kLoadInputBatch};
  }
  if (std::holds_alternative<fw::RunRequest>(command)) {
    if (state_ != DeviceState::kLoaded || batch_.rows() == 0) {
      return error(DeviceError::kNotLoaded, "no batch loaded");
    }
    state_ = DeviceState::kRunning;
    outputs_ = reality_->run(batch_, theta_);
    if (inject_nan && outputs_.size() > 0) {
      outputs_.data()[faults_.pick(static_cast<std::size_t>(outputs_.size()))] =
          std::numeric_limits<double>::quiet_NaN();
    }
    ++stats_.runs;
    stats_.samples += static_cast<std::uint64_t>(batch_.rows());
    ++volatile_.runs_completed;
    state_ = DeviceState::kOutputsReady;
    return fw::Ack{fw::MessageType::kRun};
  }
  if (const auto* settle = std::get_if<fw::SettleRequest>(&command))
    return execute_settle(*settle, inject_nan);
  if (const auto* run = std::get_if<fw::SpikeRunRequest>(&command)) {
    return execute_spike_run(*run, inject_nan);
  }
  if (std::holds_alternative<fw::ReadOutputsRequest>(command)) {
    if (state_ != DeviceState::kOutputsReady) {
      return error(DeviceError::kNoOutputs, "no outputs ready");
    }
    fw::OutputsReply o;
    o.rows = static_cast<std::uint32_t>(outputs_.rows());
    o.cols = static_cast<std::uint32_t>(outputs_.cols());
    const RowMatrix rm = outputs_;
    o.data.assign(rm.data(), rm.data() + rm.size());
    return o;
  }
  if (std::holds_alternative<fw::StatusRequest>(command)) {
    fw::StatusReply s = volatile_;
    s.state = state_;
    s.health = fw::Health::kOk;
    s.frames_rejected = decoder_.stats().errors();
    return s;
  }
  if (std::holds_alternative<fw::AbortRequest>(command)) {
    theta_ = safe_theta_;
    batch_.resize(0, 0);
    outputs_.resize(0, 0);
    state_ = DeviceState::kIdle;
    ++stats_.safe_state;
    return fw::Ack{fw::MessageType::kAbort};
  }
  if (std::holds_alternative<fw::SelfTestRequest>(command)) {
    return fw::SelfTestReply{true, "reality simulator: ok\nDAC/ADC loopback: ok"};
  }
  if (std::holds_alternative<fw::DescribeRequest>(command)) {
    // The emulated boards are protocol 1.0 boards: their spec comes from the datasheet (kind=).
    return error(DeviceError::kUnsupported, "describe is protocol 1.1; this board speaks 1.0");
  }
  return error(DeviceError::kMalformed, "not a command a board accepts (replies go the other way)");
}

FirmwareEmulator::Message FirmwareEmulator::execute_settle(const fw::SettleRequest& settle,
                                                           bool inject_nan) {
  using fw::DeviceError;
  if (spec_.settle_nodes <= 0) {
    return error(DeviceError::kUnsupported, "this board has no settle call");
  }
  if (batch_.rows() == 0) return error(DeviceError::kNotLoaded, "no batch loaded");
  digital_twin::SettleBoundary b;
  b.kind = static_cast<digital_twin::SettleBoundary::Kind>(settle.boundary);
  b.beta = settle.beta;
  b.values = Eigen::Map<const RowMatrix>(settle.data.data(), settle.rows, settle.cols);
  const std::string problem = digital_twin::boundary_problem(
      spec_.num_outputs, spec_.settle_output_nodes, b, batch_.rows());
  if (!problem.empty()) {
    return error(b.values.allFinite() ? DeviceError::kShape : DeviceError::kNonFinite, problem);
  }
  auto nodes = reality_->settle(batch_, theta_, b, settle.warm_start);
  if (!nodes) {
    ++stats_.settle_timeouts;
    return error(DeviceError::kNotSettled,
                 "the network did not reach equilibrium within its settle time");
  }
  if (inject_nan && nodes->size() > 0) {
    nodes->data()[faults_.pick(static_cast<std::size_t>(nodes->size()))] =
        std::numeric_limits<double>::quiet_NaN();
  }
  ++stats_.settles;
  stats_.samples += static_cast<std::uint64_t>(batch_.rows());
  fw::SettleReply reply;
  reply.rows = static_cast<std::uint32_t>(nodes->rows());
  reply.cols = static_cast<std::uint32_t>(nodes->cols());
  const RowMatrix rm = *nodes;
  reply.data.assign(rm.data(), rm.data() + rm.size());
  return reply;
}

FirmwareEmulator::Message FirmwareEmulator::execute_spike_run(const fw::SpikeRunRequest& run,
                                                              bool inject_nan) {
  using fw::DeviceError;
  if (spec_.spike_channels <= 0) {
    return error(DeviceError::kUnsupported, "this board has no spike_run call (not a spiking chip)");
  }
  if (state_ == fw::DeviceState::kRunning) return error(DeviceError::kBusy, "a run is in progress");
  if (run.samples.empty() ||
      (spec_.max_batch > 0 && static_cast<Index>(run.samples.size()) > spec_.max_batch)) {
    return error(DeviceError::kShape, "spike_run of " + std::to_string(run.samples.size()) +
                                          " samples does not fit 1.." +
                                          std::to_string(spec_.max_batch));
  }
  // The board checks what it received exactly as the host does before sending.
  const fw::EventLimits limits{static_cast<std::uint32_t>(spec_.spike_steps),
                               static_cast<std::uint32_t>(spec_.spike_channels),
                               static_cast<std::uint32_t>(spec_.max_events_per_step),
                               static_cast<std::uint32_t>(spec_.max_events_per_sample), "channel"};
  std::vector<std::vector<digital_twin::InputEvent>> events(run.samples.size());
  for (std::size_t b = 0; b < run.samples.size(); ++b) {
    const std::string problem = fw::event_list_problem(run.samples[b], limits);
    if (!problem.empty()) {
      ++stats_.limit_violations;
      return error(DeviceError::kBadEvents, "sample " + std::to_string(b) + ": " + problem);
    }
    for (const fw::SpikeEvent& e : run.samples[b]) events[b].push_back({e.address, e.step});
  }
  ChipRun chip = reality_->spike_run(events, theta_);
  if (inject_nan && chip.outputs.size() > 0) {
    chip.outputs.data()[faults_.pick(static_cast<std::size_t>(chip.outputs.size()))] =
        std::numeric_limits<double>::quiet_NaN();
  }
  ++stats_.runs;
  ++stats_.spike_runs;
  stats_.samples += static_cast<std::uint64_t>(run.samples.size());
  ++volatile_.runs_completed;
  const Index B = chip.outputs.rows(), T = spec_.spike_steps, H = spec_.spike_hidden,
              O = spec_.num_outputs;
  fw::SpikeRunReply reply;
  reply.rows = static_cast<std::uint32_t>(B);
  reply.cols = static_cast<std::uint32_t>(O);
  const RowMatrix outputs = chip.outputs;
  reply.outputs.assign(outputs.data(), outputs.data() + outputs.size());
  reply.hidden.resize(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b) {
    for (Index t = 0; t < T; ++t) {
      for (Index j = 0; j < H; ++j) {
        if (chip.hidden_spikes(b, t * H + j) > 0.0) {
          reply.hidden[static_cast<std::size_t>(b)].push_back(
              {static_cast<std::uint16_t>(t), static_cast<std::uint16_t>(j)});
        }
      }
    }
  }
  reply.trace_steps = static_cast<std::uint16_t>(T);
  reply.trace_channels = static_cast<std::uint16_t>(O);
  reply.trace_lo = chip.code_lo;
  reply.trace_hi = chip.code_hi;
  reply.trace_codes.reserve(static_cast<std::size_t>(B * T * O));
  for (Index b = 0; b < B; ++b) {
    for (Index k = 0; k < T * O; ++k) {
      reply.trace_codes.push_back(static_cast<std::uint8_t>(chip.output_codes(b, k)));
    }
  }
  return reply;
}

}  // namespace pnn::drivers::sim
