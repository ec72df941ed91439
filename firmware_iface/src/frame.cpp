#include "pnn/firmware_iface/frame.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "pnn/common/bytes.hpp"
#include "pnn/firmware_iface/crc32c.hpp"

namespace pnn::firmware_iface {
namespace {

using common::load_le;
using common::store_le;

constexpr std::size_t kHeaderCheckOffset = 16;

void write_header(std::uint8_t* p, const FrameHeader& h) noexcept {
  p[0] = kSync0;
  p[1] = kSync1;
  p[2] = h.version;
  p[3] = static_cast<std::uint8_t>(h.type);
  p[4] = h.flags;
  p[5] = p[6] = p[7] = 0;
  store_le<std::uint32_t>(p + 8, h.seq);
  store_le<std::uint32_t>(p + 12, h.payload_size);
  store_le<std::uint32_t>(p + kHeaderCheckOffset, crc32c({p, kHeaderCheckOffset}));
}

// Checks the 20 header bytes at p (sync already matched). Order matters: the header check
// comes first so that no field is trusted before it is known to be intact; the version is
// checked before the reserved bytes because a later version may use them.
Errc check_header(const std::uint8_t* p, std::uint32_t max_payload, FrameHeader& h) noexcept {
  if (crc32c({p, kHeaderCheckOffset}) != load_le<std::uint32_t>(p + kHeaderCheckOffset)) {
    return Errc::kBadHeader;
  }
  h.version = p[2];
  h.type = static_cast<MessageType>(p[3]);
  h.flags = p[4];
  h.seq = load_le<std::uint32_t>(p + 8);
  h.payload_size = load_le<std::uint32_t>(p + 12);
  if (h.version != kProtocolVersion) return Errc::kUnsupportedVersion;
  if ((p[5] | p[6] | p[7]) != 0) return Errc::kBadHeader;
  if (h.payload_size > max_payload) return Errc::kOversize;
  return Errc{};
}

bool check_trailer(const std::uint8_t* frame, std::size_t payload_size) noexcept {
  const std::uint32_t header_crc = load_le<std::uint32_t>(frame + kHeaderCheckOffset);
  const std::uint32_t crc = crc32c_extend(header_crc, {frame + kFrameHeaderSize, payload_size});
  return crc == load_le<std::uint32_t>(frame + kFrameHeaderSize + payload_size);
}

}  // namespace

bool is_known_message_type(std::uint8_t type) noexcept {
  return to_string(static_cast<MessageType>(type)) != "unknown";
}

std::string_view to_string(MessageType type) noexcept {
  switch (type) {
    case MessageType::kIdentify:
      return "identify";
    case MessageType::kGetCapabilities:
      return "get_capabilities";
    case MessageType::kSetParameters:
      return "set_parameters";
    case MessageType::kLoadInputBatch:
      return "load_input_batch";
    case MessageType::kRun:
      return "run";
    case MessageType::kReadOutputs:
      return "read_outputs";
    case MessageType::kGetStatus:
      return "get_status";
    case MessageType::kAbort:
      return "abort";
    case MessageType::kSelfTest:
      return "self_test";
    case MessageType::kDescribe:
      return "describe";
    case MessageType::kSettle:
      return "settle";
    case MessageType::kSpikeRun:
      return "spike_run";
    case MessageType::kIdentifyReply:
      return "identify_reply";
    case MessageType::kCapabilitiesReply:
      return "capabilities_reply";
    case MessageType::kOutputsReply:
      return "outputs_reply";
    case MessageType::kStatusReply:
      return "status_reply";
    case MessageType::kSelfTestReply:
      return "self_test_reply";
    case MessageType::kDescribeReply:
      return "describe_reply";
    case MessageType::kSettleReply:
      return "settle_reply";
    case MessageType::kSpikeRunReply:
      return "spike_run_reply";
    case MessageType::kAck:
      return "ack";
    case MessageType::kErrorReply:
      return "error_reply";
  }
  return "unknown";
}

std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(const FrameHeader& header) noexcept {
  std::array<std::uint8_t, kFrameHeaderSize> bytes;
  write_header(bytes.data(), header);
  return bytes;
}

std::uint32_t frame_check(std::span<const std::uint8_t, kFrameHeaderSize> header,
                          std::span<const std::uint8_t> payload) noexcept {
  return crc32c_extend(crc32c(header.first<kHeaderCheckOffset>()), payload);
}

std::size_t begin_frame(std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  out.resize(start + kFrameHeaderSize);
  return start;
}

void finish_frame(std::vector<std::uint8_t>& out, std::size_t start, MessageType type,
                  std::uint32_t seq, std::uint8_t flags) {
  if (start > out.size() || out.size() - start < kFrameHeaderSize) {
    throw std::invalid_argument("finish_frame: no frame begun at offset " + std::to_string(start));
  }
  const std::size_t payload_size = out.size() - start - kFrameHeaderSize;
  if (payload_size > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("frame payload exceeds 2^32 - 1 bytes");
  }
  write_header(out.data() + start, {.version = kProtocolVersion,
                                    .type = type,
                                    .flags = flags,
                                    .seq = seq,
                                    .payload_size = static_cast<std::uint32_t>(payload_size)});
  const std::uint8_t* frame = out.data() + start;
  const std::uint32_t crc = crc32c_extend(load_le<std::uint32_t>(frame + kHeaderCheckOffset),
                                          {frame + kFrameHeaderSize, payload_size});
  const std::size_t at = out.size();
  out.resize(at + kFrameTrailerSize);
  store_le<std::uint32_t>(out.data() + at, crc);
}

void encode_frame(MessageType type, std::uint32_t seq, std::span<const std::uint8_t> payload,
                  std::vector<std::uint8_t>& out, std::uint8_t flags) {
  if (payload.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("frame payload exceeds 2^32 - 1 bytes");
  }
  out.reserve(out.size() + frame_size(payload.size()));
  const std::size_t start = begin_frame(out);
  if (!payload.empty()) out.insert(out.end(), payload.begin(), payload.end());
  finish_frame(out, start, type, seq, flags);
}

Result<FrameView> decode_frame(std::span<const std::uint8_t> data,
                               std::uint32_t max_payload_bytes) noexcept {
  if (data.size() < 2) {
    if (!data.empty() && data[0] != kSync0) return Errc::kBadSync;
    return Errc::kTruncated;
  }
  if (data[0] != kSync0 || data[1] != kSync1) return Errc::kBadSync;
  if (data.size() < kFrameHeaderSize) return Errc::kTruncated;
  FrameHeader h;
  if (const Errc e = check_header(data.data(), max_payload_bytes, h); e != Errc{}) return e;
  // frame_size() adds (never subtracts), so a 20-23-byte buffer cannot underflow the check and
  // let check_trailer read past the end.
  if (data.size() < frame_size(h.payload_size)) return Errc::kTruncated;
  if (!check_trailer(data.data(), h.payload_size)) return Errc::kCrcMismatch;
  return FrameView{h, data.subspan(kFrameHeaderSize, h.payload_size)};
}

FrameDecoder::FrameDecoder(FrameDecoderOptions options) : options_(options) {}

void FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (read_pos_ == buffer_.size()) {
    buffer_.clear();
    read_pos_ = 0;
  } else if (read_pos_ > 0) {
    // Move the unread tail (at most one partial frame after a drain) to the front, so the
    // buffer never grows by bytes already consumed.
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(read_pos_));
    read_pos_ = 0;
  }
  // The awaited frame's header is intact, so its length is real and bounded by the maximum:
  // reserve it once instead of growing geometrically while the payload trickles in. (Not in
  // next(), where reallocating would invalidate views it already returned.)
  if (awaiting_bytes_ > buffer_.capacity()) buffer_.reserve(awaiting_bytes_);
  if (!bytes.empty()) buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void FrameDecoder::skip(std::size_t n) noexcept {
  read_pos_ += n;
  stats_.garbage_bytes += n;
}

std::optional<FrameView> FrameDecoder::next() {
  awaiting_bytes_ = 0;
  for (;;) {
    const std::size_t avail = buffer_.size() - read_pos_;
    if (avail == 0) return std::nullopt;
    const std::uint8_t* p = buffer_.data() + read_pos_;
    if (p[0] != kSync0) {
      const void* hit = std::memchr(p, kSync0, avail);
      skip(hit ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit) - p) : avail);
      continue;
    }
    if (avail < 2) return std::nullopt;
    if (p[1] != kSync1) {
      skip(1);
      continue;
    }
    if (avail < kFrameHeaderSize) return std::nullopt;
    FrameHeader h;
    if (const Errc e = check_header(p, options_.max_payload_bytes, h); e != Errc{}) {
      if (e == Errc::kUnsupportedVersion) {
        ++stats_.unsupported_version;
      } else if (e == Errc::kOversize) {
        ++stats_.oversize;
      } else {
        ++stats_.bad_header;
      }
      skip(1);
      continue;
    }
    const std::size_t need = frame_size(h.payload_size);
    if (avail < need) {
      awaiting_bytes_ = need;  // relative to read_pos_, which feed() moves to 0
      return std::nullopt;
    }
    if (!check_trailer(p, h.payload_size)) {
      ++stats_.crc_mismatch;
      skip(1);
      continue;
    }
    read_pos_ += need;
    awaiting_bytes_ = 0;
    ++stats_.frames;
    return FrameView{h, {p + kFrameHeaderSize, h.payload_size}};
  }
}

void FrameDecoder::flush() {
  if (buffered_bytes() > 0) ++stats_.truncated;
  buffer_.clear();
  read_pos_ = 0;
  awaiting_bytes_ = 0;
}

void FrameDecoder::reset() {
  flush();
  std::vector<std::uint8_t>().swap(buffer_);
}

}  // namespace pnn::firmware_iface
