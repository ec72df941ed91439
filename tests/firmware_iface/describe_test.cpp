// describe (protocol 1.1): the payload decoder (layout, bounds) and the host's check of a
// description (describe_problem), table-driven.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <string>
#include <vector>

#include "pnn/firmware_iface/messages.hpp"

using namespace pnn::firmware_iface;

namespace {

using Bytes = std::vector<std::uint8_t>;

DescribeReply good() {
  return DescribeReply{1, "tanh-mixer", 4, 3, 15, 64, "V", -1.0, 1.0, "1 (normalised)", 0.01,
                       {{"W", "1", "mixing weights", 12, -2.0, 2.0},
                        {"b", "mV", "offsets", 3, -0.5, 0.5}}};
}

Bytes payload_of(const DescribeReply& d) {
  Bytes p;
  encode_payload(d, p);
  return p;
}

}  // namespace

TEST_CASE("describe: request and reply round-trip, NaN limits included (the check comes later)") {
  DescribeReply d = good();
  Bytes p = payload_of(d);
  auto back = decode_payload(MessageType::kDescribeReply, p);
  REQUIRE(back);
  CHECK(std::get<DescribeReply>(*back) == d);
  d.blocks[0].min = std::numeric_limits<double>::quiet_NaN();
  auto nan = decode_payload(MessageType::kDescribeReply, payload_of(d));
  REQUIRE(nan);
  CHECK(std::isnan(std::get<DescribeReply>(*nan).blocks[0].min));
  CHECK(decode_payload(MessageType::kDescribe, {}));
  CHECK(decode_payload(MessageType::kDescribe, Bytes{0}).error() == Errc::kTrailingBytes);
  CHECK(to_string(MessageType::kDescribe) == "describe");
  CHECK(to_string(MessageType::kDescribeReply) == "describe_reply");
}

TEST_CASE("describe: every truncation, a trailing byte and a lying block count are refused") {
  const Bytes p = payload_of(good());
  for (std::size_t n = 0; n < p.size(); ++n) {
    CAPTURE(n);
    auto r = decode_payload(MessageType::kDescribeReply, std::span(p.data(), n));
    REQUIRE_FALSE(r);
    CHECK(r.error() == Errc::kTruncated);
  }
  Bytes longer = p;
  longer.push_back(0);
  CHECK(decode_payload(MessageType::kDescribeReply, longer).error() == Errc::kTrailingBytes);
  // The block count sits just before the first block: claim 2^32 - 1 blocks.
  DescribeReply none = good();
  none.blocks.clear();
  Bytes lying = payload_of(none);
  for (std::size_t i = lying.size() - 4; i < lying.size(); ++i) lying[i] = 0xFF;
  CHECK(decode_payload(MessageType::kDescribeReply, lying).error() == Errc::kTruncated);
}

TEST_CASE("describe: a description with a problem is refused, naming the problem and the fix") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* what;
    std::function<void(DescribeReply&)> spoil;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"minor 0", [](DescribeReply& d) { d.protocol_minor = 0; }, "from 1.1 on"},
      {"no inputs", [](DescribeReply& d) { d.num_inputs = 0; }, "num_inputs is 0, outside 1..65536"},
      {"huge outputs", [](DescribeReply& d) { d.num_outputs = 1u << 20; }, "num_outputs is 1048576"},
      {"zero max batch", [](DescribeReply& d) { d.max_batch = 0; }, "max_batch is 0"},
      {"huge max batch", [](DescribeReply& d) { d.max_batch = 0xFFFFFFFFu; }, "max_batch is 4294967295"},
      {"batch frame too big",
       [](DescribeReply& d) {
         d.num_inputs = 60000;
         d.max_batch = 60000;
       },
       "serve a smaller max_batch"},
      {"params zero", [](DescribeReply& d) { d.num_params = 0; }, "num_params is 0"},
      {"inconsistent sizes", [](DescribeReply& d) { d.num_params = 16; },
       "inconsistent sizes: the parameter blocks hold 15 entries but num_params is 16"},
      {"input NaN", [nan](DescribeReply& d) { d.input_min = nan; }, "input limits"},
      {"input min > max", [](DescribeReply& d) { d.input_min = 2.0; }, "input limits have min 2"},
      {"block inf", [inf](DescribeReply& d) { d.blocks[1].max = inf; }, "'b' limits"},
      {"block min > max",
       [](DescribeReply& d) {
         d.blocks[0].min = 1.0;
         d.blocks[0].max = -1.0;
       },
       "swap them"},
      {"unknown input unit", [](DescribeReply& d) { d.input_unit = "furlongs"; },
       "input unit 'furlongs' is not a known unit"},
      {"empty output unit", [](DescribeReply& d) { d.output_unit.clear(); }, "output unit ''"},
      {"unknown block unit", [](DescribeReply& d) { d.blocks[0].unit = "parsec"; },
       "block 0 'W' unit 'parsec'"},
      {"noise negative", [](DescribeReply& d) { d.output_noise_std = -1.0; }, "output_noise_std"},
      {"no blocks",
       [](DescribeReply& d) {
         d.blocks.clear();
         d.num_params = 1;
       },
       "no parameter blocks"},
      {"empty block", [](DescribeReply& d) { d.blocks[1].count = 0; }, "has 0 entries"},
      {"unnamed block", [](DescribeReply& d) { d.blocks[1].name.clear(); }, "has no name"},
      {"duplicate block", [](DescribeReply& d) { d.blocks[1].name = d.blocks[0].name; }, "appears twice"},
  };
  CHECK(describe_problem(good()).empty());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    DescribeReply d = good();
    c.spoil(d);
    const std::string problem = describe_problem(d);
    CHECK_MESSAGE(problem.find(c.message) != std::string::npos, problem);
  }
}

TEST_CASE("describe: units are known by their first word") {
  CHECK(is_known_unit("V"));
  CHECK(is_known_unit("1 (pulse-shaper transmission)"));
  CHECK(is_known_unit("uW (RF power of each comb tone)"));
  CHECK(is_known_unit("a.u."));
  CHECK_FALSE(is_known_unit(""));
  CHECK_FALSE(is_known_unit(" V"));
  CHECK_FALSE(is_known_unit("volts"));
}
