// The thread pool behind parallel_for (digital_twin/src/parallel.cpp): every index runs exactly
// once, errors reach the caller, nesting runs inline, and several owners at once (a daemon's
// device workers) share the pool; with pauses between calls long enough for the workers to go
// from spinning to sleeping, and with none.
#include "pnn/digital_twin/parallel.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using pnn::digital_twin::parallel_for;

namespace {

// Runs `calls` parallel_for calls of `n` indices and checks each index ran once per call.
bool run_calls(int calls, std::size_t n, std::chrono::microseconds pause) {
  for (int c = 0; c < calls; ++c) {
    std::vector<std::atomic<int>> hits(n);
    parallel_for(n, [&](std::size_t i) { hits[i].fetch_add(1); });
    for (auto& h : hits) {
      if (h.load() != 1) return false;
    }
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  return true;
}

}  // namespace

TEST_CASE("parallel_for runs every index once, back to back and after the workers have slept") {
  CHECK(run_calls(2000, 2, std::chrono::microseconds(0)));
  CHECK(run_calls(2000, 7, std::chrono::microseconds(0)));
  // 1 ms pauses: longer than the workers' spin, so every call wakes sleeping workers.
  CHECK(run_calls(50, 3, std::chrono::microseconds(1000)));
  // Pauses around the spin time, where a worker may be deciding to sleep as a job arrives.
  for (int us : {20, 60, 100, 140, 200}) CHECK(run_calls(40, 2, std::chrono::microseconds(us)));
}

TEST_CASE("parallel_for passes the first error to the caller and finishes the other indices") {
  std::atomic<int> ran{0};
  CHECK_THROWS_WITH_AS(parallel_for(16,
                                    [&](std::size_t i) {
                                      ran.fetch_add(1);
                                      if (i == 5) throw std::runtime_error("index 5 failed");
                                    }),
                       "index 5 failed", std::runtime_error);
  CHECK(ran.load() == 16);
  CHECK(run_calls(10, 4, std::chrono::microseconds(0)));  // the pool still works
}

TEST_CASE("parallel_for nested inside a task runs inline") {
  std::atomic<int> inner{0};
  parallel_for(4, [&](std::size_t) { parallel_for(3, [&](std::size_t) { inner.fetch_add(1); }); });
  CHECK(inner.load() == 12);
}

TEST_CASE("parallel_for from several threads at once") {
  std::atomic<bool> ok{true};
  std::vector<std::thread> owners;
  for (int t = 0; t < 4; ++t) {
    owners.emplace_back([&, t] {
      if (!run_calls(300, 2 + static_cast<std::size_t>(t), std::chrono::microseconds(t * 50))) ok = false;
    });
  }
  for (auto& o : owners) o.join();
  CHECK(ok.load());
}
