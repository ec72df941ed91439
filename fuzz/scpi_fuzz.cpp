// libFuzzer target: SCPI line splitting, command/argument/error/IDN parsing and their
// formatters' round trips, and the error queue. Built by fuzz/run.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "pnn/firmware_iface/scpi.hpp"

using namespace pnn::firmware_iface::scpi;

namespace {

void check_message(std::string_view m) {
  if (auto program = parse_program(m)) {
    for (const Command& c : *program) {
      FUZZ_CHECK(!c.header.empty());
      for (const Argument& a : c.args) FUZZ_CHECK(a.text.size() <= m.size());
      (void)header_matches("SYSTem:ERRor[:NEXT]?", c);
      (void)header_matches("[SOURce:]FREQuency:CW", c);
      (void)header_matches("*IDN?", c);
    }
  }
  (void)parse_arguments(m);
  if (auto e = parse_error(m)) {
    auto again = parse_error(format_error(*e));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *e);
  }
  if (auto id = parse_identity(m)) {
    auto again = parse_identity(format_identity(*id));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::size_t chunk = 1 + data[1] % 32;
  const std::span<const std::uint8_t> in(data + 2, size - 2);
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());

  LineSplitterOptions options{.max_message_bytes = 1 + (mode & 0x7Fu) * 4,
                              .binary_blocks = (mode & 0x80) != 0};
  LineSplitter splitter(options);
  for (std::size_t at = 0; at < in.size(); at += chunk) {
    splitter.feed(in.subspan(at, std::min(chunk, in.size() - at)));
    while (auto m = splitter.next()) {
      if (!*m) continue;
      FUZZ_CHECK(m->value().size() <= options.max_message_bytes);
      FUZZ_CHECK(!m->value().empty());
      check_message(m->value());
    }
  }
  FUZZ_CHECK(splitter.partial_bytes() <= options.max_message_bytes);
  check_message(text);

  // Formatters round-trip through the parser for any content.
  auto quoted = parse_arguments(quote(text));
  FUZZ_CHECK(quoted.has_value() && quoted->size() == 1);
  FUZZ_CHECK((*quoted)[0].kind == Argument::Kind::kString && (*quoted)[0].text == text);
  auto block = parse_arguments(format_block(in));
  FUZZ_CHECK(block.has_value() && block->size() == 1);
  FUZZ_CHECK((*block)[0].kind == Argument::Kind::kBlock && (*block)[0].text == text);

  // Error queue driven by the input: never above capacity, FIFO of what was kept.
  ErrorQueue q(1 + mode % 8);
  for (const std::uint8_t b : in) {
    if (b & 1) {
      q.push({-100 - b, "e"});
    } else {
      (void)q.pop();
    }
    FUZZ_CHECK(q.size() <= q.capacity());
  }
  return 0;
}
