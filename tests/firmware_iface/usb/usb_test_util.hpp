#pragma once
// Host-side helpers shared by the emulated-USB test cases.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::test_usb {

/// Reads until `delimiter` (included) or an error; the error, if any, in `error`.
inline std::string read_until(firmware_iface::Transport& t, char delimiter,
                              firmware_iface::Deadline deadline, std::error_code& error,
                              std::size_t chunk = 256) {
  std::string text;
  std::vector<std::uint8_t> buf(chunk);
  while (text.empty() || text.back() != delimiter) {
    auto n = t.read_some(buf, deadline);
    if (!n) {
      error = n.error();
      return text;
    }
    text.append(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  error = {};
  return text;
}

/// Sends `text` and reads one reply line.
inline std::string query(firmware_iface::Transport& t, const std::string& text,
                         std::error_code& error,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds{2000}) {
  const auto deadline = firmware_iface::deadline_after(timeout);
  error = t.write({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, deadline);
  if (error) return {};
  return read_until(t, '\n', deadline, error);
}

/// A received frame, copied out of the decoder.
struct ReceivedFrame {
  firmware_iface::FrameHeader header;
  std::vector<std::uint8_t> payload;
};

/// Sends one frame and reads until one whole frame is back, in reads of `chunk` bytes.
inline std::optional<ReceivedFrame> frame_round_trip(firmware_iface::Transport& t,
                                                     firmware_iface::MessageType type,
                                                     std::uint32_t seq, std::error_code& error,
                                                     std::size_t chunk = 4096) {
  const auto deadline = firmware_iface::deadline_after(std::chrono::milliseconds{2000});
  std::vector<std::uint8_t> frame;
  firmware_iface::encode_frame(type, seq, {}, frame);
  error = t.write(frame, deadline);
  if (error) return std::nullopt;
  firmware_iface::FrameDecoder decoder;
  std::vector<std::uint8_t> buf(chunk);
  while (true) {
    auto n = t.read_some(buf, deadline);
    if (!n) {
      error = n.error();
      return std::nullopt;
    }
    decoder.feed(std::span<const std::uint8_t>(buf).first(*n));
    if (auto f = decoder.next()) {
      return ReceivedFrame{f->header, {f->payload.begin(), f->payload.end()}};
    }
  }
}

/// "a | b | c", so a failed comparison prints both sides.
inline std::string join(const std::vector<std::string>& events) {
  std::string s;
  for (const auto& e : events) s += (s.empty() ? "" : " | ") + e;
  return s;
}

inline bool contains(const std::vector<std::string>& events, const std::string& e) {
  return std::find(events.begin(), events.end(), e) != events.end();
}

}  // namespace pnn::test_usb
