#pragma once
// Shared by the test runners (tests/main.cpp, tests/firmware_iface/usb/main.cpp): a guard that
// fails a run in which no test case matched its filter. CTest runs each TEST_CASE by name, and a
// name CTest cannot carry intact (doctest_discover_tests cuts names at ';') would otherwise
// "pass" by running nothing. Include once per binary, in the file that defines main().
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>

namespace pnn_test_guard {

inline std::atomic<int> g_cases_run{0};

struct CountingListener : doctest::IReporter {
  explicit CountingListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++g_cases_run; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("count-cases", 1, CountingListener);

/// Runs `context`; a successful run that ran no test case fails, naming `binary`.
inline int run_guarded(doctest::Context& context, const char* binary) {
  const int status = context.run();
  if (context.shouldExit()) return status;  // --help, --list-test-cases, ...
  if (status == 0 && g_cases_run == 0) {
    std::fprintf(stderr, "%s: no test case matched the filter (a test name with ';'?)\n", binary);
    return 1;
  }
  return status;
}

}  // namespace pnn_test_guard
