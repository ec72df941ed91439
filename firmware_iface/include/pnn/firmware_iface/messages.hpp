#pragma once
/// The command set of protocol v1 (minor 1 adds describe, docs/protocol.md §2): one typed struct
/// per message, payload encode/decode, and whole-message (frame) encode/decode. Pure: no I/O.
///
/// Payload encoding (little-endian): integers fixed width; `double` as IEEE-754 binary64;
/// strings as u16 byte count + bytes (UTF-8 by convention, not checked); arrays as u32 count +
/// elements. Each payload has exactly one encoding: decoders reject trailing bytes, counts that
/// exceed the bytes present (before allocating anything), out-of-range enums and bools other
/// than 0/1, so decode(encode(m)) == m and encode(decode(b)) == b.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "pnn/firmware_iface/error.hpp"
#include "pnn/firmware_iface/frame.hpp"

namespace pnn::firmware_iface {

/// Longest string field (bytes): the u16 length prefix.
inline constexpr std::size_t kMaxStringBytes = 0xFFFF;

// --- commands (host → device) and their replies ----------------------------------------------

/// kIdentify, empty payload → IdentifyReply.
struct IdentifyRequest {
  bool operator==(const IdentifyRequest&) const = default;
};
/// kIdentifyReply: str serial, str model, str firmware_version.
struct IdentifyReply {
  std::string serial;
  std::string model;
  std::string firmware_version;
  bool operator==(const IdentifyReply&) const = default;
};

/// kGetCapabilities, empty payload → CapabilitiesReply.
struct CapabilitiesRequest {
  bool operator==(const CapabilitiesRequest&) const = default;
};
/// Hard limits of a contiguous run of parameters (θ[first .. first+count), blocks in order).
/// Encoding: str name, u32 count, f64 min, f64 max. Decoders require min ≤ max (no NaN).
struct ParameterBlock {
  std::string name;
  std::uint32_t count = 0;
  double min = 0.0;
  double max = 0.0;
  bool operator==(const ParameterBlock&) const = default;
};
/// kCapabilitiesReply: u32 num_inputs, u32 num_outputs, u32 num_params, u32 max_batch,
/// u32 num_blocks, blocks. Decoders require the block counts to sum to num_params.
struct CapabilitiesReply {
  std::uint32_t num_inputs = 0;
  std::uint32_t num_outputs = 0;
  std::uint32_t num_params = 0;
  std::uint32_t max_batch = 0;  ///< most rows a LoadInputBatch may carry
  std::vector<ParameterBlock> blocks;
  bool operator==(const CapabilitiesReply&) const = default;
};

/// kSetParameters: u32 count, count × f64 θ → Ack or ErrorReply.
struct SetParameters {
  std::vector<double> theta;
  bool operator==(const SetParameters&) const = default;
};

/// kLoadInputBatch: u32 rows, u32 cols, rows·cols × f64, row-major (one sample per row)
/// → Ack or ErrorReply.
struct LoadInputBatch {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<double> data;  ///< rows·cols values, row-major
  bool operator==(const LoadInputBatch&) const = default;
};

/// kRun, empty payload: run the loaded batch with the current θ → Ack (accepted) or ErrorReply.
struct RunRequest {
  bool operator==(const RunRequest&) const = default;
};

/// kReadOutputs, empty payload → OutputsReply (or ErrorReply if no outputs are ready).
struct ReadOutputsRequest {
  bool operator==(const ReadOutputsRequest&) const = default;
};
/// kOutputsReply: same layout as LoadInputBatch.
struct OutputsReply {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<double> data;
  bool operator==(const OutputsReply&) const = default;
};

/// kGetStatus, empty payload → StatusReply.
struct StatusRequest {
  bool operator==(const StatusRequest&) const = default;
};
/// What the firmware is doing (not the host-side driver lifecycle).
enum class DeviceState : std::uint8_t {
  kIdle = 0,          ///< ready, no batch loaded
  kLoaded = 1,        ///< a batch is loaded
  kRunning = 2,       ///< a run is in progress
  kOutputsReady = 3,  ///< the last run finished; outputs can be read
  kFault = 4,         ///< stopped on an error; see error_code
};
enum class Health : std::uint8_t { kOk = 0, kWarning = 1, kFault = 2 };
/// kStatusReply: u8 state, u8 health, i32 error_code, u64 × 4 counters.
struct StatusReply {
  DeviceState state = DeviceState::kIdle;
  Health health = Health::kOk;
  std::int32_t error_code = 0;        ///< last error (0 = none); same space as ErrorReply
  std::uint64_t commands_ok = 0;      ///< commands executed since power-on
  std::uint64_t commands_failed = 0;  ///< commands answered with ErrorReply
  std::uint64_t frames_rejected = 0;  ///< frames the device dropped (check failures)
  std::uint64_t runs_completed = 0;
  bool operator==(const StatusReply&) const = default;
};

/// kAbort, empty payload: stop a run, drive outputs safe → Ack.
struct AbortRequest {
  bool operator==(const AbortRequest&) const = default;
};

/// kSelfTest, empty payload → SelfTestReply.
struct SelfTestRequest {
  bool operator==(const SelfTestRequest&) const = default;
};
/// kSelfTestReply: u8 passed (0 or 1), str text (details, one finding per line).
struct SelfTestReply {
  bool passed = false;
  std::string text;
  bool operator==(const SelfTestReply&) const = default;
};

/// kDescribe (protocol 1.1), empty payload → DescribeReply. A board of protocol 1.0 answers it
/// with ErrorReply (unsupported or malformed) or not at all: the host then needs kind=.
struct DescribeRequest {
  bool operator==(const DescribeRequest&) const = default;
};
/// The minor protocol version a DescribeReply carries (the frame version byte stays 1).
inline constexpr std::uint8_t kProtocolMinor = 1;
/// One θ block of a DescribeReply. Encoding: str name, str unit, str description, u32 count,
/// f64 min, f64 max.
struct DescribedBlock {
  std::string name;
  std::string unit;
  std::string description;
  std::uint32_t count = 0;
  double min = 0.0;
  double max = 0.0;
  bool operator==(const DescribedBlock&) const = default;
};
/// kDescribeReply: the whole spec of the board, so a host needs no datasheet of its own.
/// Encoding: u8 protocol_minor, str kind, u32 num_inputs, u32 num_outputs, u32 num_params,
/// u32 max_batch, str input_unit, f64 input_min, f64 input_max, str output_unit,
/// f64 output_noise_std, u32 num_blocks, blocks. The decoder checks only the layout (bounds,
/// trailing bytes); `describe_problem` checks the meaning.
struct DescribeReply {
  std::uint8_t protocol_minor = kProtocolMinor;
  std::string kind;  ///< a label for the setup, e.g. "tanh-mixer"
  std::uint32_t num_inputs = 0;
  std::uint32_t num_outputs = 0;
  std::uint32_t num_params = 0;
  std::uint32_t max_batch = 0;
  std::string input_unit;
  double input_min = 0.0;
  double input_max = 0.0;
  std::string output_unit;
  double output_noise_std = 0.0;
  std::vector<DescribedBlock> blocks;
  bool operator==(const DescribeReply&) const = default;
};

/// kSettle (energy-based boards: a settle to equilibrium, docs/protocol.md §2): u8 boundary
/// (0 free, 1 nudged, 2 clamped), f64 beta, u8 warm_start (0/1), u32 rows, u32 cols, rows·cols
/// × f64 row-major boundary values (nudged: the batch's output targets; clamped: the output-node
/// voltages; free: 0 × 0). Settles the loaded batch at the current θ → SettleReply, or ErrorReply
/// (kNotSettled when the equilibrium is not reached within the board's settle time; nothing
/// else changes then). warm_start: start from the board's last equilibrium of this batch.
struct SettleRequest {
  std::uint8_t boundary = 0;
  double beta = 0.0;
  bool warm_start = false;
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<double> data;
  bool operator==(const SettleRequest&) const = default;
};
/// kSettleReply: the node voltages of every sample, same layout as OutputsReply (rows = batch,
/// cols = the board's settle nodes).
struct SettleReply {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<double> data;
  bool operator==(const SettleReply&) const = default;
};

/// One event on a spiking board's event bus: a time step of the run and an address (an input
/// channel in a SpikeRunRequest, a hidden neuron in a SpikeRunReply). Encoding: u16 step,
/// u16 address.
struct SpikeEvent {
  std::uint16_t step = 0;
  std::uint16_t address = 0;
  bool operator==(const SpikeEvent&) const = default;
};
/// The events of one sample, sorted by (step, address), at most one per step and address.
using EventList = std::vector<SpikeEvent>;

/// Most events one sample of a SpikeRunRequest may carry on the wire (its u16 count); a board's
/// own limits (`EventLimits`) are usually far lower.
inline constexpr std::uint32_t kMaxInputEventsPerSample = 0xFFFF;
/// Most samples of one SpikeRunRequest or SpikeRunReply a decoder accepts.
inline constexpr std::uint32_t kMaxSpikeSamples = 1u << 16;

/// kSpikeRun (spiking boards: one run of a batch of input spike trains, docs/protocol.md §2):
/// u32 samples, then per sample u16 count and count × SpikeEvent (address = input channel).
/// The events are the batch: the board runs them at its current θ (no LoadInputBatch needed)
/// and answers SpikeRunReply, or ErrorReply kBadEvents naming the first bad event (unsorted or
/// repeated, outside the time window, an unknown channel, over the board's events per step or
/// per sample; nothing runs then). It changes neither θ nor the board's loaded batch.
struct SpikeRunRequest {
  std::vector<EventList> samples;
  bool operator==(const SpikeRunRequest&) const = default;
};
/// kSpikeRunReply: the outputs (u32 rows, u32 cols, rows·cols × f64 row-major, as OutputsReply),
/// then u32 samples (= rows) and per sample u32 count and count × SpikeEvent (the hidden spikes,
/// address = hidden neuron, sorted by step then neuron), then the sampled output membranes:
/// u16 trace_steps, u16 trace_channels, f64 trace_lo, f64 trace_hi (code 0 and code 255 in
/// membrane units, lo < hi), rows·trace_steps·trace_channels × u8 ADC codes (sample-major, then
/// step-major: entry (b·steps + t)·channels + o).
struct SpikeRunReply {
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  std::vector<double> outputs;
  std::vector<EventList> hidden;
  std::uint16_t trace_steps = 0;
  std::uint16_t trace_channels = 0;
  double trace_lo = 0.0;
  double trace_hi = 1.0;
  std::vector<std::uint8_t> trace_codes;
  /// trace_lo + (trace_hi − trace_lo) · code / 255.
  double membrane(std::uint8_t code) const { return trace_lo + (trace_hi - trace_lo) * code / 255.0; }
  bool operator==(const SpikeRunReply&) const = default;
};

/// What a list of events must satisfy on one board: steps in [0, num_steps), addresses in
/// [0, num_addresses), at most max_per_step events in one step and max_per_sample in all.
struct EventLimits {
  std::uint32_t num_steps = 0;
  std::uint32_t num_addresses = 0;
  std::uint32_t max_per_step = 0;
  std::uint32_t max_per_sample = 0;
  const char* address_name = "channel";  ///< how an address is called in messages
};
/// What is wrong with `events`, as a sentence naming the first bad event and the fix; empty if
/// they are usable: sorted by (step, address) without repeats, within the time window and the
/// address range, within the per-step and per-sample caps. Pure; used by the host before sending
/// and by a board on receipt.
std::string event_list_problem(std::span<const SpikeEvent> events, const EventLimits& limits);

/// Limits a host accepts in a DescribeReply (beyond them the description is refused).
inline constexpr std::uint32_t kMaxDescribedSize = 1u << 16;         ///< inputs, outputs
inline constexpr std::uint32_t kMaxDescribedParams = 1u << 20;       ///< θ entries
inline constexpr std::uint32_t kMaxDescribedBatch = 1u << 16;        ///< rows per batch
inline constexpr std::uint64_t kMaxDescribedBatchBytes = 1ull << 28; ///< one batch frame
/// What is wrong with a description, as a sentence naming the problem and the fix; empty if it
/// is usable: sizes in 1..limits, block counts adding up to num_params, finite limits with
/// min ≤ max, non-empty unique block names, known units (`is_known_unit`).
std::string describe_problem(const DescribeReply& d);
/// The unit's first word (before a space or '(') is one of the known units: "1" (dimensionless),
/// "a.u.", V, mV, uV, A, mA, uA, W, mW, uW, nW, dBm, dB, Hz, kHz, MHz, GHz, rad, deg, s, ms, us,
/// ns, K, m, mm, um, nm, T, mT, %, counts, kcounts, clicks.
bool is_known_unit(std::string_view unit);

/// kAck: u8 type of the command acknowledged (the frame's seq echoes the command's).
struct Ack {
  MessageType command = MessageType::kRun;
  bool operator==(const Ack&) const = default;
};

/// Error codes of protocol v1 that every board uses in ErrorReply (a board may add its own codes
/// from 1000 up). The host driver acts on them: kNotLoaded / kNoOutputs after a firmware reset
/// mean the board lost its state and the host must send θ and the batch again.
enum class DeviceError : std::int32_t {
  kMalformed = 1,     ///< the payload did not decode, or the command is not valid in this role
  kShape = 2,         ///< wrong count of θ entries, wrong number of input columns, batch too big
  kOutOfLimits = 3,   ///< a θ entry or input outside the board's hard limits: refused, not applied
  kNonFinite = 4,     ///< NaN or Inf in θ or the inputs
  kNotLoaded = 5,     ///< Run without a loaded batch (or lost by a reset)
  kNoOutputs = 6,     ///< ReadOutputs before a run completed (or lost by a reset)
  kBusy = 7,          ///< a run is in progress
  kUnsupported = 8,   ///< command not implemented by this board
  kHardware = 9,      ///< the board's own fault (self-test failed, overtemperature, ...)
  kNotSettled = 10,   ///< a settle did not reach equilibrium within the board's settle time
  kBadEvents = 11,    ///< a spike_run's event list is unsorted, out of the window or over a cap
};
/// "not loaded", ...; "device error N" for other codes.
std::string to_string(DeviceError code);

/// kErrorReply: i32 code, str message. Codes are the device's own (positive); 0 is not an error.
struct ErrorReply {
  std::int32_t code = 0;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

using Message = std::variant<IdentifyRequest, IdentifyReply, CapabilitiesRequest, CapabilitiesReply,
                             SetParameters, LoadInputBatch, RunRequest, ReadOutputsRequest,
                             OutputsReply, StatusRequest, StatusReply, AbortRequest,
                             SelfTestRequest, SelfTestReply, Ack, ErrorReply,
                             DescribeRequest, DescribeReply, SettleRequest, SettleReply,
                             SpikeRunRequest, SpikeRunReply>;

/// The frame type that carries `message`.
MessageType message_type(const Message& message) noexcept;

/// Appends the payload of `message` to `out`. Throws std::invalid_argument on a message that
/// cannot be encoded (rows·cols ≠ data.size(), a string over kMaxStringBytes, more than 2^32 − 1
/// elements): that is a bug in the caller, not a wire fault.
void encode_payload(const Message& message, std::vector<std::uint8_t>& out);

/// Decodes a payload of frame type `type`. Errors: kUnknownMessageType, kTruncated,
/// kTrailingBytes, kBadValue, kInconsistent.
Result<Message> decode_payload(MessageType type, std::span<const std::uint8_t> payload);

/// Appends a whole v1 frame carrying `message` to `out`, writing the payload in place.
/// Throws like encode_payload, and std::length_error past 2^32 − 1 payload bytes.
void encode_message(const Message& message, std::uint32_t seq, std::vector<std::uint8_t>& out,
                    std::uint8_t flags = 0);

/// decode_payload(frame.header.type, frame.payload).
Result<Message> decode_message(const FrameView& frame);

// --- fast paths for large batches ---------------------------------------------------------------

/// Appends a kLoadInputBatch or kOutputsReply frame straight from `data` (rows·cols values,
/// row-major), without building a message struct first. Throws std::invalid_argument for another
/// type or a size mismatch, std::length_error past 2^32 − 1 payload bytes.
void encode_batch_message(MessageType type, std::uint32_t seq, std::uint32_t rows,
                          std::uint32_t cols, std::span<const double> data,
                          std::vector<std::uint8_t>& out, std::uint8_t flags = 0);

/// Decodes a batch payload (LoadInputBatch / OutputsReply layout) into `data`, reusing its
/// capacity. On error `rows`, `cols` and `data` are unspecified. Errors: kTruncated (fewer than
/// rows·cols values present), kTrailingBytes (more).
std::error_code decode_batch_payload(std::span<const std::uint8_t> payload, std::uint32_t& rows,
                                     std::uint32_t& cols, std::vector<double>& data);

}  // namespace pnn::firmware_iface
