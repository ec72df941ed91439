#include "pnn/drivers/framed_device.hpp"

#include <algorithm>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/messages.hpp"

namespace pnn::drivers {
namespace {

namespace fw = firmware_iface;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Message = fw::Message;

const char* command_name(const Message& m) { return fw::to_string(fw::message_type(m)).data(); }

class FramedDevice final : public PhysicalSystem {
 public:
  FramedDevice(DeviceSpec spec, digital_twin::ModelPtr twin, fw::TransportPtr transport,
               FramedDeviceOptions options)
      : PhysicalSystem(std::move(spec)),
        twin_(std::move(twin)),
        transport_(std::move(transport)),
        options_(options),
        decoder_(fw::FrameDecoderOptions{.max_payload_bytes = max_frame_payload(this->spec())}) {
    rx_.resize(64 * 1024);
  }

  digital_twin::ModelPtr nominal_twin() const override { return twin_; }

 private:
  // One command's outcome: a reply message (possibly the board's ErrorReply), or a link error.
  using Outcome = fw::Result<Message>;

  std::string where() const { return spec().serial + " (" + transport_->describe() + ")"; }

  // Sends one command and waits for the reply that echoes its sequence number. Replies to
  // earlier commands (late arrivals after a timeout) are discarded. A reply that arrived
  // damaged is reported at once (kCrcMismatch), without waiting for the deadline.
  Outcome exchange(const Message& command, fw::Deadline deadline) {
    const std::uint32_t seq = ++seq_;
    tx_.clear();
    if (const auto* load = std::get_if<fw::LoadInputBatch>(&command)) {
      fw::encode_batch_message(fw::MessageType::kLoadInputBatch, seq, load->rows, load->cols,
                               load->data, tx_);
    } else {
      fw::encode_message(command, seq, tx_);
    }
    if (auto ec = transport_->write(tx_, deadline)) return ec;
    const std::uint64_t errors_before = decoder_.stats().errors();
    for (;;) {
      while (auto frame = decoder_.next()) {
        if (frame->header.seq != seq) {
          ++stale_replies_;
          continue;
        }
        auto reply = fw::decode_message(*frame);
        if (!reply) return fw::Errc::kCrcMismatch;  // intact frame, payload not ours: damaged
        ++board_commands_;  // the board executed this command
        return std::move(reply).value();
      }
      if (decoder_.stats().errors() > errors_before &&
          decoder_.buffered_bytes() < fw::kFrameHeaderSize) {
        return fw::Errc::kCrcMismatch;
      }
      auto n = transport_->read_some(rx_, deadline);
      if (!n) return n.error();
      decoder_.feed(std::span<const std::uint8_t>(rx_.data(), *n));
    }
  }

  // Drops whatever is in flight so the next exchange starts clean.
  void clear_link() {
    decoder_.flush();
    if (transport_->is_open()) (void)transport_->clear(fw::deadline_after(options_.command_timeout));
  }

  static bool link_lost(std::error_code ec) {
    return ec == fw::Errc::kDisconnected || ec == fw::Errc::kNotOpen;
  }

  // An idempotent command with the retry budget. Link loss is not retried (the device is gone).
  Outcome command(const Message& cmd, std::chrono::milliseconds timeout) {
    std::error_code last;
    for (int attempt = 0; attempt <= options_.retries; ++attempt) {
      Outcome r = exchange(cmd, fw::deadline_after(timeout));
      if (r) return r;
      last = r.error();
      if (link_lost(last)) return last;
      ++retries_used_;
      clear_link();
    }
    return last;
  }

  // The per-attempt timeout a command is sent with: a run waits for the physics as well as the
  // link (FramedDeviceOptions::run_timeout), every other command for the link alone.
  std::chrono::milliseconds timeout_for(const Message& cmd) const {
    const bool runs =
        std::holds_alternative<fw::RunRequest>(cmd) || std::holds_alternative<fw::SettleRequest>(cmd);
    return runs ? options_.run_timeout : options_.command_timeout;
  }

  Error link_error(const Message& cmd, std::error_code ec, int attempts) const {
    std::ostringstream m;
    m << spec().serial << ": " << command_name(cmd) << " ";
    if (link_lost(ec)) {
      m << "failed: the device is disconnected (" << transport_->describe()
        << "); it must be reconnected and re-identified (recover)";
      return make_error(Errc::kIo, m.str());
    }
    if (ec == fw::Errc::kTimeout) {
      m << "got no reply within " << timeout_for(cmd).count() << " ms after " << attempts
        << " attempt(s) over " << transport_->describe();
      return make_error(Errc::kTimeout, m.str());
    }
    m << "failed after " << attempts << " attempt(s) over " << transport_->describe() << ": "
      << ec.message();
    return make_error(Errc::kIo, m.str());
  }

  Error device_error(const Message& cmd, const fw::ErrorReply& e) const {
    const auto code = static_cast<fw::DeviceError>(e.code);
    const std::string text = spec().serial + ": the board refused " + command_name(cmd) + " (" +
                             fw::to_string(code) + "): " + e.message;
    if (code == fw::DeviceError::kOutOfLimits) return make_error(Errc::kOutOfLimits, text);
    if (code == fw::DeviceError::kShape) return make_error(Errc::kShapeMismatch, text);
    if (code == fw::DeviceError::kNonFinite) return make_error(Errc::kNonFiniteRequest, text);
    return make_error(Errc::kDeviceFault, text);
  }

  // A command whose reply must be of type R (Ack for commands without data).
  template <class R>
  Result<R> expect(const Message& cmd, std::chrono::milliseconds timeout) {
    Outcome r = command(cmd, timeout);
    if (!r) return link_error(cmd, r.error(), options_.retries + 1);
    if (const auto* e = std::get_if<fw::ErrorReply>(&*r)) return device_error(cmd, *e);
    if (auto* v = std::get_if<R>(&*r)) return std::move(*v);
    return make_error(Errc::kIo, spec().serial + ": " + command_name(cmd) +
                                     " was answered by an unexpected " +
                                     command_name(*r) + " (protocol mismatch?)");
  }

  Result<void> ack(const Message& cmd) {
    auto r = expect<fw::Ack>(cmd, options_.command_timeout);
    if (!r) return r.error();
    return {};
  }

  // Also tells whether the board restarted since the previous status (board_restarted_): its
  // command counters (since power-on) are below the number of replies received from it.
  Result<fw::StatusReply> status() {
    auto st = expect<fw::StatusReply>(fw::StatusRequest{}, options_.command_timeout);
    if (!st) return st;
    const std::uint64_t reported = st.value().commands_ok + st.value().commands_failed;
    // board_commands_ counts this status reply, which the board may not count yet: allow one.
    board_restarted_ = board_commands_ > reported + 1;
    board_commands_ = reported;
    return st;
  }

  // ---- lifecycle hooks -------------------------------------------------------------------

  Result<void> do_configure() override {
    const auto deadline = fw::deadline_after(options_.command_timeout);
    if (auto ec = transport_->open(deadline)) {
      return make_error(ec == fw::Errc::kTimeout ? Errc::kTimeout : Errc::kIo,
                        "cannot open " + transport_->describe() + ": " + ec.message() +
                            (ec == fw::Errc::kDisconnected
                                 ? " (is the device plugged in and powered?)"
                                 : ""));
    }
    decoder_.reset();
    board_theta_.reset();
    clear_link();
    auto id = expect<fw::IdentifyReply>(fw::IdentifyRequest{}, options_.command_timeout);
    if (!id) return fail_configure(id.error());
    if (!first_serial_.empty() && id.value().serial != first_serial_) {
      return fail_configure(make_error(
          Errc::kIo, "identity mismatch at " + transport_->describe() + ": expected serial " +
                         first_serial_ + ", found " + id.value().serial +
                         " (another device took its place; check the cabling)"));
    }
    auto caps = expect<fw::CapabilitiesReply>(fw::CapabilitiesRequest{}, options_.command_timeout);
    if (!caps) return fail_configure(caps.error());
    if (auto ok = adopt_capabilities(caps.value()); !ok) return fail_configure(ok.error());
    first_serial_ = id.value().serial;
    DeviceSpec& s = mutable_spec();
    s.serial = id.value().serial;
    s.model = id.value().model;
    s.firmware = id.value().firmware_version;
    if (auto r = ack(fw::AbortRequest{}); !r) return fail_configure(r.error());
    auto st = status();
    if (!st) return fail_configure(st.error());
    runs_seen_ = st.value().runs_completed;
    return {};
  }

  Error fail_configure(Error e) {
    transport_->close();
    return e;
  }

  // The board's capabilities must match the datasheet sizes; limits become the tighter of both.
  Result<void> adopt_capabilities(const fw::CapabilitiesReply& caps) {
    DeviceSpec& s = mutable_spec();
    auto mismatch = [&](const std::string& what, auto board, auto expected) {
      return make_error(Errc::kDeviceFault,
                        s.serial + ": the board reports " + std::to_string(board) + " " + what +
                            ", the configuration expects " + std::to_string(expected) +
                            " (wrong device or wrong address options?)");
    };
    if (static_cast<Index>(caps.num_inputs) != s.num_inputs) {
      return mismatch("inputs", caps.num_inputs, s.num_inputs);
    }
    if (static_cast<Index>(caps.num_outputs) != s.num_outputs) {
      return mismatch("outputs", caps.num_outputs, s.num_outputs);
    }
    if (static_cast<Index>(caps.num_params) != s.num_params()) {
      return mismatch("parameters", caps.num_params, s.num_params());
    }
    if (caps.blocks.size() != s.params.size()) {
      return mismatch("parameter blocks", caps.blocks.size(), s.params.size());
    }
    for (std::size_t i = 0; i < caps.blocks.size(); ++i) {
      ParamBlock& mine = s.params[i];
      const fw::ParameterBlock& board = caps.blocks[i];
      if (static_cast<Index>(board.count) != mine.count) {
        return mismatch("entries in block " + mine.name, board.count, mine.count);
      }
      mine.hard_min = std::max(mine.hard_min, board.min);
      mine.hard_max = std::min(mine.hard_max, board.max);
      if (mine.hard_min > mine.hard_max) {
        return make_error(Errc::kDeviceFault, s.serial + ": the board's limits for " + mine.name +
                                                  " do not overlap the configured ones");
      }
    }
    if (caps.max_batch > 0 && (s.max_batch == 0 || static_cast<Index>(caps.max_batch) < s.max_batch)) {
      s.max_batch = static_cast<Index>(caps.max_batch);
    }
    return {};
  }

  Result<void> do_activate() override {
    auto st = status();
    if (!st) return st.error();
    if (st.value().health == fw::Health::kFault) {
      return make_error(Errc::kDeviceFault, spec().serial + ": the board reports FAULT (error " +
                                                std::to_string(st.value().error_code) +
                                                "); not activated");
    }
    runs_seen_ = st.value().runs_completed;
    return {};
  }

  Result<void> do_safe_state() override {
    board_theta_.reset();
    return ack(fw::AbortRequest{});
  }

  Result<void> do_cleanup() override {
    transport_->close();
    decoder_.reset();
    board_theta_.reset();
    return {};
  }

  // ---- forward ---------------------------------------------------------------------------

  // Health WARNING when this call needed retries, or a firmware reset was recovered.
  void report_recovered_faults(std::uint64_t retries_before) {
    if (retries_used_ != retries_before || resets_recovered_ > 0) {
      set_health(Health::kWarning, std::to_string(retries_used_) + " command retries and " +
                                       std::to_string(resets_recovered_) +
                                       " firmware resets recovered since configure (" +
                                       transport_->describe() + ")");
    }
  }

  // SetParameters unless the board confirmed this θ already.
  Result<void> send_theta(const VectorRef& theta) {
    if (board_theta_ && *board_theta_ == theta) return {};
    board_theta_.reset();
    fw::SetParameters set;
    set.theta.assign(theta.data(), theta.data() + theta.size());
    if (auto r = ack(set); !r) return r.error();
    board_theta_ = theta;
    return {};
  }

  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    const RowMatrix rows = x;
    fw::LoadInputBatch load{static_cast<std::uint32_t>(x.rows()), static_cast<std::uint32_t>(x.cols()),
                            std::vector<double>(rows.data(), rows.data() + rows.size())};
    const std::uint64_t retries_before = retries_used_;
    // Each pass sends what the board needs and runs the batch once. A pass repeats only when a
    // firmware reset lost the board's state before the outputs were delivered.
    for (int pass = 0; pass <= options_.retries; ++pass) {
      if (auto r = send_theta(theta); !r) return r.error();
      if (auto r = ack(load); !r) return r.error();
      // A reset since θ was acknowledged (before or on this LoadInputBatch) leaves the board
      // with its safe θ and nothing tells so at Run: check before running, never after.
      auto st = status();
      if (!st) return st.error();
      if (st.value().state == fw::DeviceState::kFault) {
        return make_error(Errc::kDeviceFault, spec().serial + ": the board reports FAULT (error " +
                                                  std::to_string(st.value().error_code) + ")");
      }
      if (board_restarted_ || st.value().state != fw::DeviceState::kLoaded) {
        ++resets_recovered_;
        board_theta_.reset();
        runs_seen_ = st.value().runs_completed;
        continue;
      }
      auto ran = run_once();
      if (!ran) return ran.error();
      if (!ran.value()) {
        note_reset();
        continue;
      }
      Outcome out = command(fw::ReadOutputsRequest{}, options_.command_timeout);
      if (!out) return link_error(fw::ReadOutputsRequest{}, out.error(), options_.retries + 1);
      if (const auto* e = std::get_if<fw::ErrorReply>(&*out)) {
        if (static_cast<fw::DeviceError>(e->code) == fw::DeviceError::kNoOutputs) {
          note_reset();  // the outputs were lost before anyone saw them: run again
          continue;
        }
        return device_error(fw::ReadOutputsRequest{}, *e);
      }
      const auto* o = std::get_if<fw::OutputsReply>(&*out);
      if (!o || static_cast<Index>(o->rows) != x.rows() ||
          static_cast<Index>(o->cols) != spec().num_outputs) {
        return make_error(Errc::kIo, spec().serial + ": ReadOutputs returned the wrong shape");
      }
      report_recovered_faults(retries_before);
      return Matrix(Eigen::Map<const RowMatrix>(o->data.data(), o->rows, o->cols));
    }
    return make_error(Errc::kDeviceFault, spec().serial + ": the board kept losing its state "
                                                          "(repeated firmware resets); stopped");
  }

  // ---- settle (energy-based boards) -------------------------------------------------------

  // θ (if changed) and the batch, then Settle. A settle changes neither θ nor the batch, so after
  // a lost or damaged reply it is asked again (the retry budget of command()); a board that
  // lost its state in a reset ("not loaded") gets θ and the batch again. "Not settled" is the
  // board's timeout: the equilibrium was not reached within its settle time.
  Result<Matrix> do_settle(const MatrixRef& x, const VectorRef& theta,
                           const digital_twin::SettleBoundary& boundary, bool warm_start) override {
    const RowMatrix rows = x;
    const fw::LoadInputBatch load{static_cast<std::uint32_t>(x.rows()),
                                  static_cast<std::uint32_t>(x.cols()),
                                  std::vector<double>(rows.data(), rows.data() + rows.size())};
    const RowMatrix values = boundary.values;
    const fw::SettleRequest request{
        static_cast<std::uint8_t>(boundary.kind),
        boundary.beta,
        warm_start,
        static_cast<std::uint32_t>(values.rows()),
        static_cast<std::uint32_t>(values.cols()),
        std::vector<double>(values.data(), values.data() + values.size())};
    const std::uint64_t retries_before = retries_used_;
    for (int pass = 0; pass <= options_.retries; ++pass) {
      if (auto r = send_theta(theta); !r) return r.error();
      if (auto r = ack(load); !r) return r.error();
      Outcome out = command(request, timeout_for(request));
      if (!out) return link_error(request, out.error(), options_.retries + 1);
      if (const auto* e = std::get_if<fw::ErrorReply>(&*out)) {
        const auto code = static_cast<fw::DeviceError>(e->code);
        if (code == fw::DeviceError::kNotLoaded) {
          note_reset();
          continue;
        }
        if (code == fw::DeviceError::kNotSettled) {
          return make_error(Errc::kTimeout, spec().serial + ": settle (" +
                                                digital_twin::to_string(boundary.kind) +
                                                ") did not converge within the board's settle "
                                                "time: " +
                                                e->message);
        }
        return device_error(request, *e);
      }
      const auto* reply = std::get_if<fw::SettleReply>(&*out);
      if (!reply) {
        return make_error(Errc::kIo, spec().serial + ": settle was answered by " +
                                         command_name(*out) + " (protocol mismatch?)");
      }
      report_recovered_faults(retries_before);
      return Matrix(Eigen::Map<const RowMatrix>(reply->data.data(), reply->rows, reply->cols));
    }
    return make_error(Errc::kDeviceFault, spec().serial +
                                              ": the board kept losing its state "
                                              "(repeated firmware resets); stopped");
  }

  // ---- spike_run (spiking boards) ---------------------------------------------------------

  // θ (if changed), then SpikeRun with the batch's events. A spike run changes neither θ nor
  // the board's state, so a lost, damaged or cut-off reply is asked for again within the retry
  // budget; a board that keeps cutting its reply off is a timeout, and nothing of it is kept.
  bool has_spike_run() const override { return spec().spike_channels > 0; }

  Result<digital_twin::SpikeRecord> do_spike_run(const EventLists& events,
                                                 const VectorRef& theta) override {
    fw::SpikeRunRequest request;
    request.samples.resize(events.size());
    for (std::size_t b = 0; b < events.size(); ++b) {
      for (const auto& e : events[b]) request.samples[b].push_back({e.step, e.channel});
    }
    const std::uint64_t retries_before = retries_used_;
    for (int pass = 0; pass <= options_.retries; ++pass) {
      if (auto r = send_theta(theta); !r) return r.error();
      Outcome out = command(request, options_.run_timeout);
      if (!out) return link_error(request, out.error(), options_.retries + 1);
      if (const auto* e = std::get_if<fw::ErrorReply>(&*out)) {
        if (static_cast<fw::DeviceError>(e->code) == fw::DeviceError::kBadEvents) {
          return make_error(Errc::kOutOfLimits, spec().serial + ": the board refused the events "
                                                    "of spike_run: " + e->message);
        }
        return device_error(request, *e);
      }
      const auto* reply = std::get_if<fw::SpikeRunReply>(&*out);
      if (!reply) {
        return make_error(Errc::kIo, spec().serial + ": spike_run was answered by " +
                                         command_name(*out) + " (protocol mismatch?)");
      }
      // A reset between SetParameters and SpikeRun runs the safe θ: the board's status tells.
      auto st = status();
      if (!st) return st.error();
      if (board_restarted_) {
        note_reset();
        continue;
      }
      auto record = to_record(*reply, events.size());
      if (record) report_recovered_faults(retries_before);
      return record;
    }
    return make_error(Errc::kDeviceFault, spec().serial +
                                              ": the board kept losing its state "
                                              "(repeated firmware resets); stopped");
  }

  // The reply as a record, or kIo naming what does not fit the spec.
  Result<digital_twin::SpikeRecord> to_record(const fw::SpikeRunReply& reply,
                                              std::size_t rows) const {
    const DeviceSpec& s = spec();
    const Index T = s.spike_steps, H = s.spike_hidden, O = s.num_outputs;
    const auto bad = [&](const std::string& what) {
      return make_error(Errc::kIo, s.serial + ": the spike_run reply is malformed (" + what +
                                       "); nothing of the run was kept");
    };
    if (reply.rows != rows || static_cast<Index>(reply.cols) != O) {
      return bad("outputs " + std::to_string(reply.rows) + "x" + std::to_string(reply.cols) +
                 ", expected " + std::to_string(rows) + "x" + std::to_string(O));
    }
    if (reply.trace_steps != T || reply.trace_channels != O) {
      return bad("traces of " + std::to_string(reply.trace_steps) + " steps x " +
                 std::to_string(reply.trace_channels) + " channels, expected " +
                 std::to_string(T) + " x " + std::to_string(O));
    }
    const auto n = static_cast<Index>(rows);
    digital_twin::SpikeRecord rec{Matrix::Zero(n, T * H), Matrix(n, T * O),
                                  Eigen::Map<const RowMatrix>(reply.outputs.data(), n, O)};
    const fw::EventLimits limits{static_cast<std::uint32_t>(T), static_cast<std::uint32_t>(H),
                                 static_cast<std::uint32_t>(H),
                                 static_cast<std::uint32_t>(T * H), "neuron"};
    for (Index b = 0; b < n; ++b) {
      const fw::EventList& spikes = reply.hidden[static_cast<std::size_t>(b)];
      const std::string problem = fw::event_list_problem(spikes, limits);
      if (!problem.empty()) return bad("hidden spikes of sample " + std::to_string(b) + ": " + problem);
      for (const fw::SpikeEvent& e : spikes) rec.hidden_spikes(b, e.step * H + e.address) = 1.0;
      for (Index k = 0; k < T * O; ++k) {
        rec.output_traces(b, k) = reply.membrane(reply.trace_codes[static_cast<std::size_t>(b * T * O + k)]);
      }
    }
    return rec;
  }

  // Runs the loaded batch once. true: it ran (outputs are on the board); false: the board had
  // lost the batch (reset), send it again. Never sends Run twice for a run that happened.
  Result<bool> run_once() {
    const fw::RunRequest run;
    for (int attempt = 0; attempt <= options_.retries; ++attempt) {
      Outcome r = exchange(run, fw::deadline_after(timeout_for(run)));
      if (r) {
        if (std::holds_alternative<fw::Ack>(*r)) {
          ++runs_seen_;
          return true;
        }
        if (const auto* e = std::get_if<fw::ErrorReply>(&*r)) {
          if (static_cast<fw::DeviceError>(e->code) == fw::DeviceError::kNotLoaded) return false;
          return device_error(run, *e);
        }
        return make_error(Errc::kIo, spec().serial + ": Run was answered by " + command_name(*r));
      }
      if (link_lost(r.error())) return link_error(run, r.error(), attempt + 1);
      // The reply is lost or damaged: did the run happen? Ask the board.
      ++retries_used_;
      clear_link();
      auto st = status();
      if (!st) return st.error();
      const fw::StatusReply& s = st.value();
      if (s.runs_completed == runs_seen_ + 1 && s.state == fw::DeviceState::kOutputsReady) {
        runs_seen_ = s.runs_completed;
        return true;
      }
      if (s.runs_completed == runs_seen_ && s.state == fw::DeviceState::kLoaded) continue;
      runs_seen_ = s.runs_completed;  // reset (counters restarted): the batch is gone
      return false;
    }
    return link_error(run, fw::Errc::kTimeout, options_.retries + 1);
  }

  void note_reset() {
    ++resets_recovered_;
    board_theta_.reset();
    if (auto st = status()) runs_seen_ = st.value().runs_completed;
  }

  digital_twin::ModelPtr twin_;
  fw::TransportPtr transport_;
  FramedDeviceOptions options_;
  fw::FrameDecoder decoder_;
  std::vector<std::uint8_t> tx_, rx_;
  std::uint32_t seq_ = 0;
  std::optional<Vector> board_theta_;  // θ the board acknowledged and still holds
  std::string first_serial_;           // identity bound at the first configure
  std::uint64_t runs_seen_ = 0;        // the board's runs_completed as last known
  std::uint64_t retries_used_ = 0;
  std::uint64_t resets_recovered_ = 0;
  std::uint64_t stale_replies_ = 0;
  std::uint64_t board_commands_ = 0;  // replies received: at most what the board executed
  bool board_restarted_ = false;      // the last status() showed a restart (see status())
};

}  // namespace

FramedDeviceOptions take_framed_device_options(DeviceAddress& address) {
  FramedDeviceOptions o;
  const long long timeout_ms = address.get_int("timeout_ms", o.command_timeout.count());
  if (timeout_ms < 1 || timeout_ms > 600000) {
    throw std::invalid_argument(address.text + ": timeout_ms must be in 1..600000");
  }
  if (address.query.count("timeout_ms")) {
    // A run gets ten times the command timeout: it waits for the physics as well as the link.
    o.command_timeout = std::chrono::milliseconds(timeout_ms);
    o.run_timeout = o.command_timeout * 10;
  }
  const long long retries = address.get_int("retries", o.retries);
  if (retries < 0 || retries > 100) {
    throw std::invalid_argument(address.text + ": retries must be in 0..100");
  }
  o.retries = static_cast<int>(retries);
  for (const char* key : {"timeout_ms", "retries"}) address.query.erase(key);
  return o;
}

std::uint32_t max_frame_payload(const DeviceSpec& spec) {
  const auto cols =
      static_cast<std::uint64_t>(std::max({spec.num_inputs, spec.num_outputs, Index{1}}));
  const auto rows = static_cast<std::uint64_t>(std::max<Index>(spec.max_batch, 1));
  const std::uint64_t batch = 8 + 8 * rows * cols;
  const std::uint64_t params = 4 + 8 * static_cast<std::uint64_t>(spec.num_params());
  // A spike run: every event the board takes (request); every possible hidden spike, the
  // outputs and the 8-bit traces (reply).
  const auto steps = static_cast<std::uint64_t>(spec.spike_steps);
  const std::uint64_t spikes =
      spec.spike_channels > 0
          ? 4 + rows * std::max<std::uint64_t>(
                           2 + 4 * static_cast<std::uint64_t>(spec.max_events_per_sample),
                           8 * static_cast<std::uint64_t>(spec.num_outputs) + 4 +
                               4 * steps * static_cast<std::uint64_t>(spec.spike_hidden) +
                               steps * static_cast<std::uint64_t>(spec.num_outputs)) +
                32
          : 0;
  const std::uint64_t need =
      std::max({batch, params, spikes, std::uint64_t{fw::kDefaultMaxPayloadBytes}}) + 64;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(need, 0xFFFFFFF0u));
}

PhysicalSystemPtr make_framed_device(DeviceSpec spec, digital_twin::ModelPtr twin,
                                     firmware_iface::TransportPtr transport,
                                     FramedDeviceOptions options) {
  if (!transport) throw std::invalid_argument("make_framed_device: null transport");
  return std::make_unique<FramedDevice>(std::move(spec), std::move(twin), std::move(transport),
                                        options);
}

}  // namespace pnn::drivers
