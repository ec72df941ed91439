// SCPI formatting: strings, blocks, error entries and *IDN? responses; the error queue.
#include <stdexcept>
#include <string>
#include <utility>

#include "pnn/firmware_iface/scpi.hpp"

namespace pnn::firmware_iface::scpi {

std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (const char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string format_block(std::span<const std::uint8_t> data) {
  if (data.size() >= 1'000'000'000) throw std::length_error("SCPI block of 10^9 bytes or more");
  const std::string length = std::to_string(data.size());
  std::string out;
  out.reserve(2 + length.size() + data.size());
  out.push_back('#');
  out.push_back(static_cast<char>('0' + length.size()));
  out.append(length);
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  return out;
}

// --- error queue ---------------------------------------------------------------------------------

std::string format_error(const ErrorEntry& entry) {
  return std::to_string(entry.code) + "," + quote(entry.message);
}

ErrorQueue::ErrorQueue(std::size_t capacity) : capacity_(capacity) {
  if (capacity == 0) throw std::invalid_argument("ErrorQueue capacity must be at least 1");
}

void ErrorQueue::push(ErrorEntry entry) {
  if (entry.code == 0) throw std::invalid_argument("ErrorQueue::push: code 0 is not an error");
  if (entries_.size() < capacity_) {
    entries_.push_back(std::move(entry));
  } else {
    entries_.back() = {kQueueOverflowCode, std::string(kQueueOverflowMessage)};
  }
}

ErrorEntry ErrorQueue::pop() {
  if (entries_.empty()) return {0, std::string(kNoErrorMessage)};
  ErrorEntry e = std::move(entries_.front());
  entries_.pop_front();
  return e;
}

// --- identification ------------------------------------------------------------------------------

std::string format_identity(const Identity& identity) {
  return identity.manufacturer + "," + identity.model + "," + identity.serial + "," +
         identity.firmware;
}

}  // namespace pnn::firmware_iface::scpi
