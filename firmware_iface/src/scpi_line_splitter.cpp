// SCPI line framing: a byte stream into newline-terminated messages, blocks kept intact.
#include <algorithm>
#include <cstring>

#include "pnn/firmware_iface/scpi.hpp"

namespace pnn::firmware_iface::scpi {

LineSplitter::LineSplitter(LineSplitterOptions options) : options_(options) {}

void LineSplitter::feed(std::string_view text) {
  feed({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

void LineSplitter::append(const std::uint8_t* data, std::size_t n) {
  if (discarding_) return;
  if (n > options_.max_message_bytes - current_.size()) {
    // Report at once (a caller waiting for a reply learns now), then drop the rest up to the
    // terminator while still tracking blocks, so a '\n' inside block data does not resync early.
    ready_.emplace_back(Errc::kMessageTooLong);
    discarding_ = true;
    current_.clear();
    current_.shrink_to_fit();
    return;
  }
  current_.append(reinterpret_cast<const char*>(data), n);
}

void LineSplitter::end_message() {
  if (!discarding_) {
    if (!current_.empty() && current_.back() == '\r') current_.pop_back();
    if (!current_.empty()) ready_.emplace_back(std::move(current_));
  }
  current_.clear();
  discarding_ = false;
  state_ = State::kText;
  element_start_ = true;
}

void LineSplitter::text_byte(std::uint8_t c) {
  state_ = State::kText;
  if (c == '"' || c == '\'') {
    quote_ = c;
    state_ = State::kQuote;
  } else if (c == '#' && element_start_ && options_.binary_blocks) {
    state_ = State::kBlockDigitCount;
  }
  element_start_ = c == ',' || c == ';' || c == ' ' || c == '\t';
}

void LineSplitter::feed(std::span<const std::uint8_t> bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (state_ == State::kBlockData) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(block_left_, bytes.size() - i));
      append(bytes.data() + i, n);
      i += n;
      block_left_ -= n;
      if (block_left_ == 0) {
        state_ = State::kText;
        element_start_ = false;
      }
      continue;
    }
    const std::uint8_t c = bytes[i++];
    if (c == '\n') {
      end_message();
      continue;
    }
    append(&c, 1);
    switch (state_) {
      case State::kText:
        text_byte(c);
        break;
      case State::kQuote:
        if (c == quote_) state_ = State::kText;  // a doubled quote re-enters on the next byte
        element_start_ = false;
        break;
      case State::kBlockDigitCount:
        if (c >= '1' && c <= '9') {
          digits_left_ = c - '0';
          block_left_ = 0;
          state_ = State::kBlockLength;
        } else if (c == '0') {
          state_ = State::kIndefinite;
        } else {
          text_byte(c);  // #H1F and the like, or not a block at all
        }
        break;
      case State::kBlockLength:
        if (c >= '0' && c <= '9') {
          block_left_ = block_left_ * 10 + (c - '0');
          if (--digits_left_ == 0) {
            state_ = block_left_ > 0 ? State::kBlockData : State::kText;
            element_start_ = false;
          }
        } else {
          text_byte(c);  // malformed block header: parse_command will report it
        }
        break;
      case State::kIndefinite:
      case State::kBlockData:
        break;
    }
  }
}

std::optional<Result<std::string>> LineSplitter::next() {
  if (ready_.empty()) return std::nullopt;
  std::optional<Result<std::string>> out(std::move(ready_.front()));
  ready_.pop_front();
  return out;
}

void LineSplitter::reset() {
  ready_.clear();
  current_.clear();
  discarding_ = false;
  state_ = State::kText;
  element_start_ = true;
}

}  // namespace pnn::firmware_iface::scpi
