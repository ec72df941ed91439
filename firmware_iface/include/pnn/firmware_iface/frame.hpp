#pragma once
/// Binary frame codec for the lab-built instrument boards (protocol version 1). Pure: no I/O.
///
/// Frame layout (all integers little-endian; docs/protocol.md has the full table and the why):
///
///   offset size field
///        0    2 sync 0xA5 0x5A
///        2    1 protocol version (kProtocolVersion)
///        3    1 message type (MessageType)
///        4    1 flags (v1 senders write 0; receivers ignore bits they do not know)
///        5    3 reserved, must be 0 in v1
///        8    4 sequence number (u32; a reply echoes the sequence of its command)
///       12    4 payload length n (u32)
///       16    4 header check: CRC-32C of bytes 0..15
///       20    n payload
///     20+n    4 frame check: CRC-32C of bytes 0..15 followed by the payload
///
/// `FrameDecoder` turns a byte stream fed in arbitrary chunks into frames, resynchronising
/// after garbage and counting every fault by class. `decode_frame` checks one frame in a
/// contiguous buffer without copying.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "pnn/firmware_iface/error.hpp"

namespace pnn::firmware_iface {

inline constexpr std::uint8_t kSync0 = 0xA5;
inline constexpr std::uint8_t kSync1 = 0x5A;
inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 20;
inline constexpr std::size_t kFrameTrailerSize = 4;
inline constexpr std::size_t kFrameOverhead = kFrameHeaderSize + kFrameTrailerSize;
/// Default largest payload a decoder accepts (1 MiB); raise it per decoder for big batches.
inline constexpr std::uint32_t kDefaultMaxPayloadBytes = 1u << 20;

/// Message types of protocol v1. Commands (host → device) are 0x01..0x7F; the reply carrying
/// data for command c is c | 0x80. Commands without a data reply are answered by `kAck`; any
/// command may be answered by `kErrorReply`. An unknown value can still travel in a frame (the
/// enum has a fixed underlying type); `decode_payload` rejects it.
enum class MessageType : std::uint8_t {
  kIdentify = 0x01,
  kGetCapabilities = 0x02,
  kSetParameters = 0x03,
  kLoadInputBatch = 0x04,
  kRun = 0x05,
  kReadOutputs = 0x06,
  kGetStatus = 0x07,
  kAbort = 0x08,
  kSelfTest = 0x09,
  kDescribe = 0x0A,  ///< protocol 1.1 (docs/protocol.md §2)
  kSettle = 0x0B,    ///< energy-based boards only (docs/protocol.md §2, settle)
  kSpikeRun = 0x0C,  ///< spiking boards only (docs/protocol.md §2, spike_run)
  kIdentifyReply = 0x81,
  kCapabilitiesReply = 0x82,
  kOutputsReply = 0x86,
  kStatusReply = 0x87,
  kSelfTestReply = 0x89,
  kDescribeReply = 0x8A,
  kSettleReply = 0x8B,
  kSpikeRunReply = 0x8C,
  kAck = 0xFE,
  kErrorReply = 0xFF,
};

/// True for the values listed in `MessageType`.
bool is_known_message_type(std::uint8_t type) noexcept;
/// "identify", "ack", …; "unknown" for other values.
std::string_view to_string(MessageType type) noexcept;

/// The fields of a frame header other than sync and checks.
struct FrameHeader {
  std::uint8_t version = kProtocolVersion;
  MessageType type = MessageType::kAck;
  std::uint8_t flags = 0;
  std::uint32_t seq = 0;
  std::uint32_t payload_size = 0;
  bool operator==(const FrameHeader&) const = default;
};

/// A checked frame. `payload` views memory owned by whoever produced the view (see there).
struct FrameView {
  FrameHeader header;
  std::span<const std::uint8_t> payload;
};

/// Bytes on the wire of a frame with `payload_size` payload bytes.
constexpr std::size_t frame_size(std::size_t payload_size) noexcept {
  return kFrameOverhead + payload_size;
}

/// The 20 header bytes for `header` (sync, fields, header check). `header.version` is written
/// as given, so tests can build frames of other versions.
std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(const FrameHeader& header) noexcept;

/// The frame check for an encoded header and its payload. With `encode_frame_header` this lets
/// a transport send header, payload and trailer (u32 LE) as three buffers, copying nothing.
std::uint32_t frame_check(std::span<const std::uint8_t, kFrameHeaderSize> header,
                          std::span<const std::uint8_t> payload) noexcept;

/// Appends one v1 frame to `out` (existing contents kept; capacity reused).
/// Throws std::length_error if the payload exceeds 2^32 − 1 bytes.
void encode_frame(MessageType type, std::uint32_t seq, std::span<const std::uint8_t> payload,
                  std::vector<std::uint8_t>& out, std::uint8_t flags = 0);

/// In-place framing, for encoders that write a payload straight into the output buffer:
/// `begin_frame` appends header space and returns its offset; append the payload to `out`;
/// `finish_frame` fills in the header and appends the trailer. Throws std::length_error if the
/// payload exceeds 2^32 − 1 bytes, std::invalid_argument if `start` is not a begun frame.
std::size_t begin_frame(std::vector<std::uint8_t>& out);
void finish_frame(std::vector<std::uint8_t>& out, std::size_t start, MessageType type,
                  std::uint32_t seq, std::uint8_t flags = 0);

/// Decodes the frame that starts at `data[0]` (no resynchronisation; trailing bytes after the
/// frame are ignored: the frame occupies `frame_size(view.payload.size())` bytes). The payload
/// views `data`. Errors: kTruncated (need more bytes), kBadSync, kBadHeader,
/// kUnsupportedVersion, kOversize (payload above `max_payload_bytes`), kCrcMismatch.
Result<FrameView> decode_frame(std::span<const std::uint8_t> data,
                               std::uint32_t max_payload_bytes = kDefaultMaxPayloadBytes) noexcept;

struct FrameDecoderOptions {
  /// Frames announcing a larger payload are rejected (kOversize) without buffering them. Bounds
  /// the decoder's memory at about one frame plus the last chunk fed.
  std::uint32_t max_payload_bytes = kDefaultMaxPayloadBytes;
};

/// Fault counters of a `FrameDecoder`, by class. Every rejected candidate frame skips one byte
/// and the hunt for sync goes on from there, so its bytes also count as garbage.
struct FrameDecoderStats {
  std::uint64_t frames = 0;               ///< frames returned by next()
  std::uint64_t garbage_bytes = 0;        ///< bytes skipped while hunting for sync
  std::uint64_t bad_header = 0;           ///< header check failed or reserved bytes set
  std::uint64_t oversize = 0;             ///< valid header, payload above the maximum
  std::uint64_t crc_mismatch = 0;         ///< valid header, frame check failed
  std::uint64_t unsupported_version = 0;  ///< valid header of another protocol version
  std::uint64_t truncated = 0;            ///< partial frame dropped by flush()/reset()
  /// Number of fault events (everything but `frames` and `garbage_bytes`).
  std::uint64_t errors() const noexcept {
    return bad_header + oversize + crc_mismatch + unsupported_version + truncated;
  }
};

/// Incremental stream decoder. Feed bytes as they arrive, in chunks of any size, then call
/// `next()` until it returns nullopt. Malformed input never throws, never reads out of bounds
/// and never makes the decoder buffer more than one frame of at most `max_payload_bytes`
/// beyond what was fed since next() last returned nullopt.
///
/// Recovery rule: a candidate frame that fails any check is dropped one byte at a time (like
/// MAVLink), so a frame after a damaged or shortened one is found even when the damaged frame's
/// length field can no longer be trusted. Worst-case work is therefore proportional to
/// bytes × max_payload_bytes for adversarial input whose headers carry valid checks; keep the
/// maximum small on untrusted links.
///
/// Not thread-safe; one decoder per stream.
class FrameDecoder {
 public:
  explicit FrameDecoder(FrameDecoderOptions options = {});

  /// Appends bytes to the stream (copied; `bytes` may be reused after the call).
  /// Invalidates views returned by next().
  void feed(std::span<const std::uint8_t> bytes);

  /// The next complete, checked frame, or nullopt if more bytes are needed. The payload views
  /// the decoder's buffer and stays valid until the next feed(), flush(), reset() or the
  /// decoder's destruction (later next() calls do not invalidate it).
  std::optional<FrameView> next();

  /// End of stream (or the transport was cleared): drops buffered bytes. If any remain (after
  /// next() returned nullopt they are the start of a frame), counts one truncated frame.
  void flush();

  /// flush(), then also releases the buffer memory.
  void reset();

  const FrameDecoderStats& stats() const noexcept { return stats_; }
  void clear_stats() noexcept { stats_ = {}; }
  /// Bytes fed but not yet returned as frames or discarded.
  std::size_t buffered_bytes() const noexcept { return buffer_.size() - read_pos_; }
  const FrameDecoderOptions& options() const noexcept { return options_; }

 private:
  void skip(std::size_t n) noexcept;

  FrameDecoderOptions options_;
  FrameDecoderStats stats_;
  std::vector<std::uint8_t> buffer_;
  std::size_t read_pos_ = 0;
  std::size_t awaiting_bytes_ = 0;  ///< size of the frame whose header next() last accepted
};

}  // namespace pnn::firmware_iface
