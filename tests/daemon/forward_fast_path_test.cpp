// The Forward fast path (forward_rpc.cpp, forward_inline): a Forward on an idle in-process
// simulated device runs on the event loop, with no hand-off to the device's worker, and only
// there: not on a device that can stall (faults=), not with sync recording, not when disabled,
// not for a batch predicted to take longer than forward.inline_max_us. Nothing it runs is lost.
#include <doctest/doctest.h>

#include <limits>
#include <set>

#include "../../daemon/src/forward_fast_path.hpp"
#include "../../daemon/src/worker.hpp"
#include "pnn/daemon/run_store.hpp"
#include "daemon_test_util.hpp"

namespace pnn::daemon::test {

namespace {

const char* kPower = "sim://power-law?prefactor=2";

// Forwards `n` single-row batches with request ids from `first_id`; REQUIREs each OK.
void forward_n(Client& client, const std::string& device, const std::string& token, int n,
               std::uint64_t first_id) {
  for (int i = 0; i < n; ++i) {
    v1::Request r = forward(device, token, 1, 1, static_cast<float>(i + 1), {1.0});
    r.set_request_id(first_id + static_cast<std::uint64_t>(i));
    const v1::Reply reply = client.call(r);
    REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
    CHECK(reply.forward().y().data(0) == doctest::Approx(2.0 * (i + 1)));
  }
}

}  // namespace

TEST_CASE("worker: try_run_here runs on the caller's thread only when the context is idle") {
  detail::Worker w;
  std::thread::id ran_on;
  CHECK(w.try_run_here([&] { ran_on = std::this_thread::get_id(); }));
  CHECK(ran_on == std::this_thread::get_id());

  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> started;
  REQUIRE(w.post([&, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();
  bool ran = false;
  CHECK_FALSE(w.try_run_here([&] { ran = true; }));  // a task runs: refused, not queued
  release.set_value();
  w.stop();
  CHECK_FALSE(ran);
  CHECK_FALSE(w.try_run_here([&] { ran = true; }));  // stopped
  CHECK_FALSE(ran);
}

TEST_CASE("daemon: Forwards on an idle in-process simulated device run on the event loop and are all recorded") {
  TempDir dir("fast-path");
  DaemonConfig c = test_config(dir);
  c.devices = {device("power", kPower)};
  c.forward_queue_bytes = 1024;  // the minimum: the event loop's try_push is refused often
  const std::string store_path = c.store_path;
  constexpr int kCalls = 300;
  {
    RunningServer s(std::move(c));
    auto client = make_client(s.rpc(), "fast");
    const std::string token = acquire_token(*client, "power");
    forward_n(*client, "power", token, kCalls, 1000);
    const v1::DeviceInfo info = describe_device(*client, "power");
    CHECK(info.forward_calls() == kCalls);
    // The first forward on a device has no timing to predict from, so it runs on the worker; a
    // forward that found its record queue full gave the push to the worker, and one that came
    // while that push ran waited on the worker too. Most of the others ran on the event loop.
    CHECK(info.inline_forward_calls() < kCalls);
    CHECK(info.inline_forward_calls() >= kCalls / 2);
    s.stop();
  }
  // Every record was written, once, in the order of the calls (record ids follow request ids).
  RunStore store(store_path);
  std::uint64_t last_request = 0;
  std::set<std::uint64_t> seen;
  for (std::uint64_t id = 1; id <= kCalls; ++id) {
    const auto rec = store.get_forward(id);
    REQUIRE(rec);
    CHECK(rec->request_id > last_request);
    last_request = rec->request_id;
    seen.insert(rec->request_id);
    CHECK(rec->y(0, 0) == doctest::Approx(2.0 * static_cast<double>(rec->request_id - 999)));
  }
  CHECK(seen.size() == kCalls);
  CHECK_FALSE(store.get_forward(kCalls + 1));
}

TEST_CASE("daemon: Forwards run on the device's worker on a device that can stall, with sync recording, or with the fast path off") {
  struct Case {
    const char* name;
    const char* address;
    ForwardRecording recording;
    std::uint32_t inline_max_us;
  };
  const Case cases[] = {
      {"faults=", "sim://power-law?prefactor=2&faults=delay_ms:1", ForwardRecording::kAsync, 200},
      {"sync recording", kPower, ForwardRecording::kSync, 200},
      {"inline_max_us 0", kPower, ForwardRecording::kAsync, 0},
  };
  for (const auto& k : cases) {
    CAPTURE(k.name);
    TempDir dir("worker-path");
    DaemonConfig c = test_config(dir);
    c.devices = {device("power", k.address)};
    c.forward_recording = k.recording;
    c.inline_forward_max_us = k.inline_max_us;
    RunningServer s(std::move(c));
    auto client = make_client(s.rpc(), "worker");
    const std::string token = acquire_token(*client, "power");
    forward_n(*client, "power", token, 20, 1000);
    const v1::DeviceInfo info = describe_device(*client, "power");
    CHECK(info.forward_calls() == 20);
    CHECK(info.inline_forward_calls() == 0);
  }
}

TEST_CASE("fast path: a batch runs inline only when its predicted time fits forward.inline_max_us") {
  using detail::fits_inline;
  CHECK_FALSE(fits_inline(-1.0, 1, 200));  // nothing measured yet: the first forward on a device
  CHECK_FALSE(fits_inline(std::numeric_limits<double>::quiet_NaN(), 1, 200));
  CHECK(fits_inline(0.0, 1, 200));
  CHECK(fits_inline(1000.0, 1, 200));       // 1 µs
  CHECK(fits_inline(1000.0, 200, 200));     // 200 µs: at the bound
  CHECK_FALSE(fits_inline(1000.0, 201, 200));
  CHECK_FALSE(fits_inline(1000.0, 1024, 200));
  CHECK(fits_inline(1000.0, 0, 200));       // an empty batch costs what one row does
  CHECK_FALSE(fits_inline(1.0, 1, 0));      // 0: the fast path is off
  CHECK_FALSE(fits_inline(2e8, 1, 100000));  // one row of 200 ms, past the largest bound
}

TEST_CASE("daemon: the first Forward on a device runs on its worker, the next ones inline") {
  TempDir dir("fast-path-first");
  DaemonConfig c = test_config(dir);
  c.devices = {device("power", kPower)};
  // The largest bound: a single row of power-law takes microseconds, under a sanitizer too, so
  // what is asserted is the rule (no timing yet: the worker), not how fast this machine is.
  c.inline_forward_max_us = 100000;
  RunningServer s(std::move(c));
  auto client = make_client(s.rpc(), "first");
  const std::string token = acquire_token(*client, "power");
  forward_n(*client, "power", token, 1, 1000);
  CHECK(describe_device(*client, "power").inline_forward_calls() == 0);
  // The worker answered only once idle again (Worker::post_then), so each later call finds the
  // device idle, however late the worker's thread is scheduled.
  forward_n(*client, "power", token, 5, 2000);
  const v1::DeviceInfo info = describe_device(*client, "power");
  CHECK(info.forward_calls() == 6);
  CHECK(info.inline_forward_calls() == 5);
}

}  // namespace pnn::daemon::test
