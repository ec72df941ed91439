#include "scpi_client.hpp"

#include <charconv>
#include <cmath>

namespace pnn::drivers {
namespace {

namespace fw = firmware_iface;

// The largest response: a whole digitizer memory as float32 (4 Mi samples), with headroom.
constexpr std::size_t kMaxResponseBytes = std::size_t{32} << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

ScpiClient::ScpiClient(fw::TransportPtr transport, std::chrono::milliseconds timeout)
    : transport_(std::move(transport)),
      timeout_(timeout),
      splitter_({.max_message_bytes = kMaxResponseBytes}),
      buffer_(64 * 1024) {}

std::error_code ScpiClient::open() {
  splitter_.reset();
  return transport_->open(deadline());
}

void ScpiClient::close() noexcept {
  transport_->close();
  splitter_.reset();
}

std::error_code ScpiClient::write(std::string_view message) {
  std::string framed;
  framed.reserve(message.size() + 1);
  framed.append(message);
  framed.push_back('\n');
  return transport_->write({reinterpret_cast<const std::uint8_t*>(framed.data()), framed.size()},
                           deadline());
}

fw::Result<std::string> ScpiClient::read_response() {
  const fw::Deadline until = deadline();
  for (;;) {
    if (auto message = splitter_.next()) return std::move(*message);
    auto n = transport_->read_some(buffer_, until);
    if (!n) return n.error();
    splitter_.feed(std::span<const std::uint8_t>(buffer_.data(), *n));
  }
}

fw::Result<std::string> ScpiClient::query(std::string_view message) {
  if (const auto ec = write(message)) return ec;
  return read_response();
}

std::error_code ScpiClient::resync() {
  if (!transport_->is_open()) return fw::Errc::kNotOpen;
  if (const auto ec = transport_->clear(deadline())) return ec;
  splitter_.reset();
  token_ = token_ % 255 + 1;
  const std::string token = std::to_string(token_);
  if (const auto ec = write("*ESE " + token + ";*ESE?")) return ec;
  // Late replies to abandoned queries come first; the token ends them. Each wait is bounded by
  // the timeout, and only as many replies as there were abandoned queries can come before it.
  for (int stale = 0; stale < 64; ++stale) {
    auto reply = read_response();
    if (!reply) {
      if (reply.error() == fw::Errc::kMessageTooLong) continue;
      return reply.error();
    }
    if (trim(*reply) == token) return {};
  }
  return fw::Errc::kIo;
}

std::vector<std::string> split_responses(std::string_view message) {
  std::vector<std::string> out(1);
  char quote = 0;
  for (const char c : message) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == ';') {
      out.emplace_back();
      continue;
    }
    out.back().push_back(c);
  }
  return out;
}

std::optional<long long> parse_integer(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  long long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_decimal(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

}  // namespace pnn::drivers
