// A device's execution context (daemon/src/worker.hpp): posted tasks and a blocking caller's
// calls never overlap and keep their order; an idle context runs the caller's call on its own
// thread.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../../daemon/src/worker.hpp"

namespace pnn::daemon::detail {

TEST_CASE("worker: an idle context runs a caller's call on the caller's thread") {
  Worker w;
  std::thread::id ran_on;
  REQUIRE(w.run_here([&] { ran_on = std::this_thread::get_id(); }));
  CHECK(ran_on == std::this_thread::get_id());
  CHECK_THROWS_WITH(w.run_here([] { throw std::runtime_error("device gone"); }), "device gone");
  w.stop();
  CHECK_FALSE(w.run_here([] {}));
  CHECK_FALSE(w.post([] {}));
}

TEST_CASE("worker: a caller's call waits for the queued tasks and never overlaps one") {
  Worker w;
  std::atomic<int> inside{0}, overlaps{0};
  std::vector<int> order;
  std::mutex order_mutex;
  auto step = [&](int id) {
    if (inside.fetch_add(1) != 0) ++overlaps;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    {
      std::lock_guard lock(order_mutex);
      order.push_back(id);
    }
    inside.fetch_sub(1);
  };
  std::promise<void> release;
  auto gate = release.get_future().share();
  w.post([&, gate] {
    gate.wait();
    step(0);
  });
  for (int i = 1; i <= 3; ++i) w.post([&, i] { step(i); });
  auto caller = std::async(std::launch::async, [&] { return w.run_here([&] { step(4); }); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(order.empty());  // behind the blocked task and the queue
  release.set_value();
  CHECK(caller.get());
  // Jobs and RPCs interleaved from two threads: still one at a time.
  auto job = std::async(std::launch::async, [&] {
    for (int i = 0; i < 50; ++i) w.run_here([&] { step(100); });
  });
  for (int i = 0; i < 50; ++i) w.post([&] { step(200); });
  job.get();
  w.stop();
  CHECK(overlaps == 0);
  REQUIRE(order.size() == 105);
  CHECK(std::vector<int>(order.begin(), order.begin() + 5) == std::vector<int>{0, 1, 2, 3, 4});
}

}  // namespace pnn::daemon::detail
