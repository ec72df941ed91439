// The test runner: doctest's own main, plus the guard against runs that matched no test case
// (case_guard.hpp).
#define DOCTEST_CONFIG_IMPLEMENT
#include "case_guard.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  return pnn_test_guard::run_guarded(context, "pnn_tests");
}
