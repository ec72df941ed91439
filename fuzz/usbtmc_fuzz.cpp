// libFuzzer target: USBTMC Bulk-IN/OUT header parsing, control-response parsers and message
// splitting. Built by fuzz/run.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "pnn/firmware_iface/usbtmc.hpp"

using namespace pnn::firmware_iface::usbtmc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t expected_tag = data[0];
  const std::size_t max_transfer = 16 + data[1];
  const std::span<const std::uint8_t> in(data + 2, size - 2);

  if (auto r = parse_bulk_in(in, expected_tag)) {
    FUZZ_CHECK(r->tag == expected_tag);
    FUZZ_CHECK(r->payload.size() <= r->transfer_size);
    FUZZ_CHECK(r->payload.data() == in.data() + kHeaderSize);
    FUZZ_CHECK(r->payload.size() + kHeaderSize <= in.size());
    FUZZ_CHECK(r->size_clamped == (r->transfer_size > in.size() - kHeaderSize));
  }
  if (auto h = decode_bulk_out_header(in)) FUZZ_CHECK(h->tag != 0);
  (void)parse_initiate_abort_response(in);
  (void)parse_check_abort_bulk_out_status(in);
  (void)parse_check_abort_bulk_in_status(in);
  (void)parse_initiate_clear_response(in);
  (void)parse_check_clear_status(in);
  (void)parse_capabilities(in);

  // Splitting: bounded transfers, padded, tags never 0, EOM only on the last, lossless.
  TagGenerator tags(expected_tag);
  const auto transfers = split_message(in, max_transfer, tags);
  std::vector<std::uint8_t> joined;
  for (std::size_t i = 0; i < transfers.size(); ++i) {
    const auto& t = transfers[i];
    FUZZ_CHECK(t.size() <= max_transfer && t.size() % 4 == 0);
    auto h = decode_bulk_out_header(t);
    FUZZ_CHECK(h.has_value());
    FUZZ_CHECK(h->msg_id == MsgId::kDevDepMsgOut && h->tag != 0);
    FUZZ_CHECK(h->eom() == (i + 1 == transfers.size()));
    FUZZ_CHECK(h->transfer_size > 0 && kHeaderSize + h->transfer_size <= t.size());
    joined.insert(joined.end(), t.begin() + kHeaderSize,
                  t.begin() + kHeaderSize + h->transfer_size);
  }
  FUZZ_CHECK(joined.size() == in.size() && std::equal(joined.begin(), joined.end(), in.begin()));
  return 0;
}
