// pnn::common::Result: the one result type, with an Error (code + message) or a code alone.
#include "pnn/common/result.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

using pnn::common::Error;
using pnn::common::Result;

namespace {

Result<int> half(int v) {
  if (v % 2 != 0) {
    return Error{std::make_error_code(std::errc::invalid_argument), std::to_string(v) + " is odd"};
  }
  return v / 2;
}

Result<void> quarter_checked(int v) {
  auto h = half(v);
  if (!h) return h.error();
  if (auto q = half(*h); !q) return q.error();
  return {};
}

}  // namespace

TEST_CASE("common: Result<T> holds a value or an Error with code and message") {
  const Result<int> ok = half(8);
  REQUIRE(ok);
  CHECK(ok.has_value());
  CHECK(*ok == 4);
  CHECK(ok.value() == 4);
  CHECK(!ok.error().code);  // an empty error while it holds a value
  CHECK(ok.error().message.empty());

  const Result<int> bad = half(7);
  CHECK(!bad);
  CHECK(bad.error().code == std::errc::invalid_argument);
  CHECK(bad.error().message == "7 is odd");
  try {
    (void)bad.value();
    FAIL("value() of an error must throw");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == "Result::value() on an error: 7 is odd");
  }

  // Move-only values and moving the value out.
  Result<std::unique_ptr<int>> p = std::make_unique<int>(3);
  REQUIRE(p);
  CHECK(**p == 3);
  const std::unique_ptr<int> taken = std::move(p).value();
  CHECK(*taken == 3);
}

TEST_CASE("common: Result<void> is success or an error, and errors propagate") {
  CHECK(quarter_checked(8));
  const Result<void> odd_half = quarter_checked(6);  // 6 / 2 = 3 is odd
  REQUIRE(!odd_half);
  CHECK(odd_half.error().message == "3 is odd");
  const Result<void> first = quarter_checked(5);
  REQUIRE(!first);
  CHECK(first.error().message == "5 is odd");
  const Result<void> fine;
  CHECK(fine.has_value());
  CHECK(!fine.error().code);
}

TEST_CASE("common: a code-only Result refuses an error_code of 0") {
  using Coded = Result<int, std::error_code>;
  const Coded bad = std::make_error_code(std::errc::timed_out);
  CHECK(!bad);
  CHECK(bad.error() == std::errc::timed_out);
  CHECK_THROWS_AS(Coded(std::error_code{}), std::logic_error);
  CHECK_THROWS_AS((Result<void, std::error_code>(std::error_code{})), std::logic_error);
  const Coded ok = 1;
  CHECK(!ok.error());
  // An Error keeps whatever code it is given: its message is what the user reads.
  const Result<int> zero_code = Error{{}, "not run yet"};
  CHECK(!zero_code);
  CHECK(zero_code.error().message == "not run yet");
}
