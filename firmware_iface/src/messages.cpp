#include "pnn/firmware_iface/messages.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "pnn/common/bytes.hpp"

namespace pnn::firmware_iface {
namespace {

using Reader = common::ByteReader;
using Writer = common::ByteWriter<std::vector<std::uint8_t>>;

constexpr std::size_t kU32Max = std::numeric_limits<std::uint32_t>::max();
// Smallest encoding of one ParameterBlock: empty name (u16) + count + min + max.
constexpr std::size_t kMinBlockBytes = 2 + 4 + 8 + 8;

// --- encoding ----------------------------------------------------------------------------------

void put_string(Writer& w, const std::string& s, const char* field) {
  if (s.size() > kMaxStringBytes) {
    throw std::invalid_argument(std::string(field) + ": string of " + std::to_string(s.size()) +
                                " bytes exceeds the wire limit of 65535");
  }
  w.u16(static_cast<std::uint16_t>(s.size()));
  w.bytes(s.data(), s.size());
}

std::uint32_t checked_count(std::size_t n, const char* field) {
  if (n > kU32Max) throw std::invalid_argument(std::string(field) + ": more than 2^32 - 1 items");
  return static_cast<std::uint32_t>(n);
}

void put_batch(Writer& w, std::uint32_t rows, std::uint32_t cols, std::span<const double> data,
               const char* what) {
  if (static_cast<std::uint64_t>(rows) * cols != data.size()) {
    throw std::invalid_argument(std::string(what) + ": rows*cols = " + std::to_string(rows) + "*" +
                                std::to_string(cols) + " but data has " +
                                std::to_string(data.size()) + " values");
  }
  w.u32(rows);
  w.u32(cols);
  w.f64_array(data);
}

struct PayloadEncoder {
  Writer& w;
  void operator()(const IdentifyRequest&) const {}
  void operator()(const IdentifyReply& m) const {
    put_string(w, m.serial, "IdentifyReply.serial");
    put_string(w, m.model, "IdentifyReply.model");
    put_string(w, m.firmware_version, "IdentifyReply.firmware_version");
  }
  void operator()(const CapabilitiesRequest&) const {}
  void operator()(const CapabilitiesReply& m) const {
    w.u32(m.num_inputs);
    w.u32(m.num_outputs);
    w.u32(m.num_params);
    w.u32(m.max_batch);
    w.u32(checked_count(m.blocks.size(), "CapabilitiesReply.blocks"));
    for (const ParameterBlock& b : m.blocks) {
      put_string(w, b.name, "ParameterBlock.name");
      w.u32(b.count);
      w.f64(b.min);
      w.f64(b.max);
    }
  }
  void operator()(const SetParameters& m) const {
    w.u32(checked_count(m.theta.size(), "SetParameters.theta"));
    w.f64_array(m.theta);
  }
  void operator()(const LoadInputBatch& m) const {
    put_batch(w, m.rows, m.cols, m.data, "LoadInputBatch");
  }
  void operator()(const RunRequest&) const {}
  void operator()(const ReadOutputsRequest&) const {}
  void operator()(const OutputsReply& m) const {
    put_batch(w, m.rows, m.cols, m.data, "OutputsReply");
  }
  void operator()(const StatusRequest&) const {}
  void operator()(const StatusReply& m) const {
    w.u8(static_cast<std::uint8_t>(m.state));
    w.u8(static_cast<std::uint8_t>(m.health));
    w.i32(m.error_code);
    w.u64(m.commands_ok);
    w.u64(m.commands_failed);
    w.u64(m.frames_rejected);
    w.u64(m.runs_completed);
  }
  void operator()(const AbortRequest&) const {}
  void operator()(const SelfTestRequest&) const {}
  void operator()(const SelfTestReply& m) const {
    w.u8(m.passed ? 1 : 0);
    put_string(w, m.text, "SelfTestReply.text");
  }
  void operator()(const Ack& m) const { w.u8(static_cast<std::uint8_t>(m.command)); }
  void operator()(const ErrorReply& m) const {
    w.i32(m.code);
    put_string(w, m.message, "ErrorReply.message");
  }
  void operator()(const DescribeRequest&) const {}
  void operator()(const SettleRequest& m) const {
    w.u8(m.boundary);
    w.f64(m.beta);
    w.u8(m.warm_start ? 1 : 0);
    put_batch(w, m.rows, m.cols, m.data, "SettleRequest");
  }
  void operator()(const SettleReply& m) const {
    put_batch(w, m.rows, m.cols, m.data, "SettleReply");
  }
  void events(const EventList& list, bool wide_count, const char* field) const {
    if (!wide_count && list.size() > kMaxInputEventsPerSample) {
      throw std::invalid_argument(std::string(field) + ": " + std::to_string(list.size()) +
                                  " events in one sample exceed the wire limit of 65535");
    }
    if (wide_count) {
      w.u32(checked_count(list.size(), field));
    } else {
      w.u16(static_cast<std::uint16_t>(list.size()));
    }
    for (const SpikeEvent& e : list) {
      w.u16(e.step);
      w.u16(e.address);
    }
  }
  void operator()(const SpikeRunRequest& m) const {
    w.u32(checked_count(m.samples.size(), "SpikeRunRequest.samples"));
    for (const EventList& list : m.samples) events(list, false, "SpikeRunRequest.samples");
  }
  void operator()(const SpikeRunReply& m) const {
    put_batch(w, m.rows, m.cols, m.outputs, "SpikeRunReply.outputs");
    if (m.hidden.size() != m.rows) {
      throw std::invalid_argument("SpikeRunReply: " + std::to_string(m.hidden.size()) +
                                  " hidden event lists for " + std::to_string(m.rows) + " rows");
    }
    w.u32(m.rows);
    for (const EventList& list : m.hidden) events(list, true, "SpikeRunReply.hidden");
    const std::uint64_t codes = std::uint64_t{m.rows} * m.trace_steps * m.trace_channels;
    if (codes != m.trace_codes.size()) {
      throw std::invalid_argument("SpikeRunReply: rows*trace_steps*trace_channels = " +
                                  std::to_string(codes) + " but trace_codes has " +
                                  std::to_string(m.trace_codes.size()));
    }
    w.u16(m.trace_steps);
    w.u16(m.trace_channels);
    w.f64(m.trace_lo);
    w.f64(m.trace_hi);
    w.bytes(m.trace_codes.data(), m.trace_codes.size());
  }
  void operator()(const DescribeReply& m) const {
    w.u8(m.protocol_minor);
    put_string(w, m.kind, "DescribeReply.kind");
    w.u32(m.num_inputs);
    w.u32(m.num_outputs);
    w.u32(m.num_params);
    w.u32(m.max_batch);
    put_string(w, m.input_unit, "DescribeReply.input_unit");
    w.f64(m.input_min);
    w.f64(m.input_max);
    put_string(w, m.output_unit, "DescribeReply.output_unit");
    w.f64(m.output_noise_std);
    w.u32(checked_count(m.blocks.size(), "DescribeReply.blocks"));
    for (const DescribedBlock& b : m.blocks) {
      put_string(w, b.name, "DescribedBlock.name");
      put_string(w, b.unit, "DescribedBlock.unit");
      put_string(w, b.description, "DescribedBlock.description");
      w.u32(b.count);
      w.f64(b.min);
      w.f64(b.max);
    }
  }
};

// --- decoding ----------------------------------------------------------------------------------

std::string get_string(Reader& r) {
  const std::size_t n = r.u16();
  const auto bytes = r.take(n);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Maps the reader's final state to the payload's verdict.
std::error_code finish(const Reader& r) {
  if (!r.ok()) return Errc::kTruncated;
  if (!r.at_end()) return Errc::kTrailingBytes;
  return {};
}

template <typename T>
Result<Message> done(const Reader& r, T&& value) {
  if (const std::error_code ec = finish(r)) return ec;
  return Message{std::forward<T>(value)};
}

Result<Message> decode_capabilities(Reader& r) {
  CapabilitiesReply m;
  m.num_inputs = r.u32();
  m.num_outputs = r.u32();
  m.num_params = r.u32();
  m.max_batch = r.u32();
  const std::uint32_t num_blocks = r.u32();
  if (!r.ok()) return Errc::kTruncated;
  // Checked against the bytes present before reserving, so a lying count allocates nothing.
  if (num_blocks > r.remaining() / kMinBlockBytes) return Errc::kTruncated;
  m.blocks.reserve(num_blocks);
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < num_blocks && r.ok(); ++i) {
    ParameterBlock b;
    b.name = get_string(r);
    b.count = r.u32();
    b.min = r.f64();
    b.max = r.f64();
    if (!r.ok()) break;
    if (!(b.min <= b.max)) return Errc::kBadValue;  // also rejects NaN
    total += b.count;
    m.blocks.push_back(std::move(b));
  }
  if (const std::error_code ec = finish(r)) return ec;
  if (total != m.num_params) return Errc::kInconsistent;
  return Message{std::move(m)};
}

// Smallest encoding of one DescribedBlock: three empty strings + count + min + max.
constexpr std::size_t kMinDescribedBlockBytes = 3 * 2 + 4 + 8 + 8;

// Layout only: the meaning (sizes, limits, units) is describe_problem's, so a host can name
// what is wrong instead of reporting "bad value".
Result<Message> decode_describe(Reader& r) {
  DescribeReply m;
  m.protocol_minor = r.u8();
  m.kind = get_string(r);
  m.num_inputs = r.u32();
  m.num_outputs = r.u32();
  m.num_params = r.u32();
  m.max_batch = r.u32();
  m.input_unit = get_string(r);
  m.input_min = r.f64();
  m.input_max = r.f64();
  m.output_unit = get_string(r);
  m.output_noise_std = r.f64();
  const std::uint32_t num_blocks = r.u32();
  if (!r.ok()) return Errc::kTruncated;
  // Checked against the bytes present before reserving, so a lying count allocates nothing.
  if (num_blocks > r.remaining() / kMinDescribedBlockBytes) return Errc::kTruncated;
  m.blocks.reserve(num_blocks);
  for (std::uint32_t i = 0; i < num_blocks && r.ok(); ++i) {
    DescribedBlock b;
    b.name = get_string(r);
    b.unit = get_string(r);
    b.description = get_string(r);
    b.count = r.u32();
    b.min = r.f64();
    b.max = r.f64();
    if (!r.ok()) break;
    m.blocks.push_back(std::move(b));
  }
  return done(r, std::move(m));
}

// One sample's events: a count (u16 for requests, u32 for replies) checked against the bytes
// present before anything is reserved, so a lying count allocates nothing.
bool get_events(Reader& r, bool wide_count, EventList& out) {
  const std::uint32_t n = wide_count ? r.u32() : r.u16();
  if (!r.ok() || n > r.remaining() / 4) return false;
  out.resize(n);
  for (SpikeEvent& e : out) {
    e.step = r.u16();
    e.address = r.u16();
  }
  return r.ok();
}

// `samples` event lists, each at least its count's bytes long (checked before reserving).
bool get_event_lists(Reader& r, std::uint32_t samples, bool wide_count,
                     std::vector<EventList>& out) {
  if (samples > kMaxSpikeSamples || samples > r.remaining() / (wide_count ? 4 : 2)) return false;
  out.resize(samples);
  for (EventList& list : out) {
    if (!get_events(r, wide_count, list)) return false;
  }
  return true;
}

Result<Message> decode_spike_run(Reader& r) {
  SpikeRunRequest m;
  const std::uint32_t samples = r.u32();
  if (!r.ok() || !get_event_lists(r, samples, false, m.samples)) return Errc::kTruncated;
  return done(r, std::move(m));
}

// Layout of SpikeRunReply: the outputs batch, the hidden event lists, the trace codes.
Result<Message> decode_spike_run_reply(Reader& r) {
  SpikeRunReply m;
  m.rows = r.u32();
  m.cols = r.u32();
  if (!r.ok()) return Errc::kTruncated;
  const std::uint64_t values = std::uint64_t{m.rows} * m.cols;  // no overflow: < 2^64
  if (values > r.remaining() / sizeof(double)) return Errc::kTruncated;
  r.f64_array(static_cast<std::size_t>(values), m.outputs);
  const std::uint32_t samples = r.u32();
  if (!r.ok()) return Errc::kTruncated;
  if (samples != m.rows) return Errc::kInconsistent;
  if (!get_event_lists(r, samples, true, m.hidden)) return Errc::kTruncated;
  m.trace_steps = r.u16();
  m.trace_channels = r.u16();
  m.trace_lo = r.f64();
  m.trace_hi = r.f64();
  if (!r.ok()) return Errc::kTruncated;
  if (!(m.trace_lo < m.trace_hi) || !std::isfinite(m.trace_lo) || !std::isfinite(m.trace_hi)) {
    return Errc::kBadValue;
  }
  const std::uint64_t codes = std::uint64_t{m.rows} * m.trace_steps * m.trace_channels;
  if (codes > r.remaining()) return Errc::kTruncated;
  const auto bytes = r.take(static_cast<std::size_t>(codes));
  m.trace_codes.assign(bytes.begin(), bytes.end());
  return done(r, std::move(m));
}

template <typename T>
Result<Message> decode_batch_message(std::span<const std::uint8_t> payload) {
  T m;
  if (const std::error_code ec = decode_batch_payload(payload, m.rows, m.cols, m.data)) return ec;
  return Message{std::move(m)};
}

}  // namespace

MessageType message_type(const Message& message) noexcept {
  static constexpr MessageType kTypes[] = {MessageType::kIdentify,
                                           MessageType::kIdentifyReply,
                                           MessageType::kGetCapabilities,
                                           MessageType::kCapabilitiesReply,
                                           MessageType::kSetParameters,
                                           MessageType::kLoadInputBatch,
                                           MessageType::kRun,
                                           MessageType::kReadOutputs,
                                           MessageType::kOutputsReply,
                                           MessageType::kGetStatus,
                                           MessageType::kStatusReply,
                                           MessageType::kAbort,
                                           MessageType::kSelfTest,
                                           MessageType::kSelfTestReply,
                                           MessageType::kAck,
                                           MessageType::kErrorReply,
                                           MessageType::kDescribe,
                                           MessageType::kDescribeReply,
                                           MessageType::kSettle,
                                           MessageType::kSettleReply,
                                           MessageType::kSpikeRun,
                                           MessageType::kSpikeRunReply};
  static_assert(std::size(kTypes) == std::variant_size_v<Message>);
  return kTypes[message.index()];
}

void encode_payload(const Message& message, std::vector<std::uint8_t>& out) {
  Writer w(out);
  std::visit(PayloadEncoder{w}, message);
}

Result<Message> decode_payload(MessageType type, std::span<const std::uint8_t> payload) {
  Reader r(payload);
  switch (type) {
    case MessageType::kIdentify:
      return done(r, IdentifyRequest{});
    case MessageType::kGetCapabilities:
      return done(r, CapabilitiesRequest{});
    case MessageType::kRun:
      return done(r, RunRequest{});
    case MessageType::kReadOutputs:
      return done(r, ReadOutputsRequest{});
    case MessageType::kGetStatus:
      return done(r, StatusRequest{});
    case MessageType::kAbort:
      return done(r, AbortRequest{});
    case MessageType::kSelfTest:
      return done(r, SelfTestRequest{});
    case MessageType::kDescribe:
      return done(r, DescribeRequest{});
    case MessageType::kDescribeReply:
      return decode_describe(r);
    case MessageType::kIdentifyReply: {
      IdentifyReply m;
      m.serial = get_string(r);
      m.model = get_string(r);
      m.firmware_version = get_string(r);
      return done(r, std::move(m));
    }
    case MessageType::kCapabilitiesReply:
      return decode_capabilities(r);
    case MessageType::kSetParameters: {
      SetParameters m;
      const std::uint32_t n = r.u32();
      r.f64_array(n, m.theta);
      return done(r, std::move(m));
    }
    case MessageType::kLoadInputBatch:
      return decode_batch_message<LoadInputBatch>(payload);
    case MessageType::kOutputsReply:
      return decode_batch_message<OutputsReply>(payload);
    case MessageType::kSettleReply:
      return decode_batch_message<SettleReply>(payload);
    case MessageType::kSpikeRun:
      return decode_spike_run(r);
    case MessageType::kSpikeRunReply:
      return decode_spike_run_reply(r);
    case MessageType::kSettle: {
      SettleRequest m;
      m.boundary = r.u8();
      m.beta = r.f64();
      const std::uint8_t warm = r.u8();
      if (!r.ok()) return Errc::kTruncated;
      if (m.boundary > 2 || warm > 1) return Errc::kBadValue;
      m.warm_start = warm == 1;
      if (const std::error_code ec =
              decode_batch_payload(payload.subspan(10), m.rows, m.cols, m.data)) {
        return ec;
      }
      return Message{std::move(m)};
    }
    case MessageType::kStatusReply: {
      StatusReply m;
      const std::uint8_t state = r.u8();
      const std::uint8_t health = r.u8();
      m.error_code = r.i32();
      m.commands_ok = r.u64();
      m.commands_failed = r.u64();
      m.frames_rejected = r.u64();
      m.runs_completed = r.u64();
      if (const std::error_code ec = finish(r)) return ec;
      if (state > static_cast<std::uint8_t>(DeviceState::kFault)) return Errc::kBadValue;
      if (health > static_cast<std::uint8_t>(Health::kFault)) return Errc::kBadValue;
      m.state = static_cast<DeviceState>(state);
      m.health = static_cast<Health>(health);
      return Message{std::move(m)};
    }
    case MessageType::kSelfTestReply: {
      SelfTestReply m;
      const std::uint8_t passed = r.u8();
      m.text = get_string(r);
      if (const std::error_code ec = finish(r)) return ec;
      if (passed > 1) return Errc::kBadValue;
      m.passed = passed == 1;
      return Message{std::move(m)};
    }
    case MessageType::kAck: {
      const std::uint8_t command = r.u8();
      if (const std::error_code ec = finish(r)) return ec;
      if (!is_known_message_type(command)) return Errc::kBadValue;
      return Message{Ack{static_cast<MessageType>(command)}};
    }
    case MessageType::kErrorReply: {
      ErrorReply m;
      m.code = r.i32();
      m.message = get_string(r);
      return done(r, std::move(m));
    }
  }
  return Errc::kUnknownMessageType;
}

void encode_message(const Message& message, std::uint32_t seq, std::vector<std::uint8_t>& out,
                    std::uint8_t flags) {
  const std::size_t start = begin_frame(out);
  try {
    encode_payload(message, out);
    finish_frame(out, start, message_type(message), seq, flags);
  } catch (...) {
    out.resize(start);  // leave `out` as it was
    throw;
  }
}

Result<Message> decode_message(const FrameView& frame) {
  return decode_payload(frame.header.type, frame.payload);
}

void encode_batch_message(MessageType type, std::uint32_t seq, std::uint32_t rows,
                          std::uint32_t cols, std::span<const double> data,
                          std::vector<std::uint8_t>& out, std::uint8_t flags) {
  if (type != MessageType::kLoadInputBatch && type != MessageType::kOutputsReply) {
    throw std::invalid_argument(
        "encode_batch_message: type must be load_input_batch or "
        "outputs_reply, got " +
        std::string(to_string(type)));
  }
  const std::size_t start = out.size();
  out.reserve(start + frame_size(8 + data.size_bytes()));
  begin_frame(out);
  Writer w(out);
  try {
    put_batch(w, rows, cols, data, "encode_batch_message");
    finish_frame(out, start, type, seq, flags);
  } catch (...) {
    out.resize(start);
    throw;
  }
}

std::error_code decode_batch_payload(std::span<const std::uint8_t> payload, std::uint32_t& rows,
                                     std::uint32_t& cols, std::vector<double>& data) {
  Reader r(payload);
  rows = r.u32();
  cols = r.u32();
  if (!r.ok()) return Errc::kTruncated;
  const std::uint64_t count = static_cast<std::uint64_t>(rows) * cols;  // no overflow: < 2^64
  const std::size_t available = r.remaining() / sizeof(double);
  if (count > available) return Errc::kTruncated;
  if (r.remaining() != count * sizeof(double)) return Errc::kTrailingBytes;
  r.f64_array(static_cast<std::size_t>(count), data);
  return finish(r);
}

std::string event_list_problem(std::span<const SpikeEvent> events, const EventLimits& limits) {
  const std::string address = limits.address_name;
  const auto where = [&](std::size_t i) {
    return "event " + std::to_string(i) + " (step " + std::to_string(events[i].step) + ", " +
           address + " " + std::to_string(events[i].address) + ")";
  };
  if (events.size() > limits.max_per_sample) {
    return std::to_string(events.size()) + " events in one sample exceed the " +
           std::to_string(limits.max_per_sample) +
           " the chip takes per sample; encode fewer spikes (e.g. fewer rate-coded spikes)";
  }
  std::uint32_t in_step = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const SpikeEvent& e = events[i];
    if (e.step >= limits.num_steps) {
      return where(i) + " is outside the time window of " + std::to_string(limits.num_steps) +
             " steps; keep steps in 0.." + std::to_string(limits.num_steps - 1);
    }
    if (e.address >= limits.num_addresses) {
      return where(i) + " names an unknown " + address + "; the chip has " +
             std::to_string(limits.num_addresses) + " (0.." +
             std::to_string(limits.num_addresses - 1) + ")";
    }
    if (i > 0) {
      const SpikeEvent& p = events[i - 1];
      if (e.step < p.step || (e.step == p.step && e.address <= p.address)) {
        return where(i) + (e.step == p.step && e.address == p.address ? " repeats " : " comes after ") +
               where(i - 1) + ": events must be sorted by step, then " + address +
               ", at most one per step and " + address + "; sort and deduplicate them";
      }
      in_step = e.step == p.step ? in_step + 1 : 1;
    } else {
      in_step = 1;
    }
    if (in_step > limits.max_per_step) {
      return where(i) + " is event " + std::to_string(in_step) + " of step " +
             std::to_string(e.step) + ", over the chip's " + std::to_string(limits.max_per_step) +
             " events per step; spread the spikes over more steps";
    }
  }
  return {};
}

std::string to_string(DeviceError code) {
  switch (code) {
    case DeviceError::kMalformed: return "malformed command";
    case DeviceError::kShape: return "wrong size";
    case DeviceError::kOutOfLimits: return "outside the hard limits";
    case DeviceError::kNonFinite: return "NaN or Inf";
    case DeviceError::kNotLoaded: return "no batch loaded";
    case DeviceError::kNoOutputs: return "no outputs ready";
    case DeviceError::kBusy: return "busy";
    case DeviceError::kUnsupported: return "unsupported command";
    case DeviceError::kHardware: return "hardware fault";
    case DeviceError::kNotSettled: return "not settled";
    case DeviceError::kBadEvents: return "bad event list";
  }
  return "device error " + std::to_string(static_cast<std::int32_t>(code));
}

}  // namespace pnn::firmware_iface
