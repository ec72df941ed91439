// Run-store durability tests: a full disk, concurrent writers and readers, and acknowledged
// writes surviving kill -9.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

// Whether `f` threw a StoreError that says the disk is full; the message goes to `message`.
template <typename F>
bool throws_disk_full(F&& f, std::string& message) {
  try {
    f();
  } catch (const StoreError& e) {
    message = e.what();
    return e.disk_full();
  }
  FAIL("expected a StoreError");
  return false;
}

constexpr std::uint64_t kNoPageLimit = std::uint64_t{1} << 30;

TEST_CASE("run_store: a full disk is a StoreError with disk_full() and writes succeed with room") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("full", "", {});
  const std::uint64_t first = store.record_forward(make_forward(1));
  const ForwardStats before = store.forward_stats();

  // No page beyond the current size: the next index row (its arrays go to a segment file, its
  // 20 kB client id to SQLite) needs new pages.
  const auto big = [](std::uint64_t seed) {
    ForwardRecord r = make_forward(seed);
    r.client_id = std::string(20000, 'c');
    return r;
  };
  store.set_max_page_count_for_testing(1);
  std::string message;
  CHECK(throws_disk_full([&] { (void)store.record_forward(big(2)); }, message));
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("full") != std::string::npos);
  CHECK(message.find("retry") != std::string::npos);
  CHECK(throws_disk_full(
      [&] {
        (void)store.record_forwards({big(3), big(4)});
      },
      message));
  // Nothing of the failed writes was kept.
  const ForwardStats during = store.forward_stats();
  CHECK(during.records == before.records);
  CHECK(during.bytes == before.bytes);
  CHECK(during.newest_record_id == first);
  // Other errors are not "disk full".
  CHECK_FALSE(throws_disk_full([&] { store.set_checkpoint(run + 7, "x", 1); }, message));

  store.set_max_page_count_for_testing(kNoPageLimit);
  const std::uint64_t next = store.record_forward(make_forward(2));
  CHECK(next > first);
  const auto got = store.get_forward(next);
  REQUIRE(got.has_value());
  CHECK(bit_equal(got->x, float32_rounded(make_forward(2).x)));
  CHECK(store.forward_stats().records == before.records + 1);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: finish_run can be retried after a disk-full failure") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("finishing", "", {"SIM-A"});
  store.add_metric(run, metric_for_epoch(1));
  // A summary large enough to need new (overflow) pages.
  const std::string summary = "{\"note\":\"" + std::string(200000, 'x') + "\"}";

  store.set_max_page_count_for_testing(1);
  std::string message;
  CHECK(throws_disk_full([&] { store.finish_run(run, RunState::kSucceeded, summary, "done"); },
                         message));
  auto state = store.get_run(run);
  REQUIRE(state.has_value());
  CHECK(state->state == RunState::kRunning);  // rolled back: still running, no summary
  CHECK(state->summary_json.empty());
  CHECK(state->finished_ns == 0);

  store.set_max_page_count_for_testing(kNoPageLimit);
  store.finish_run(run, RunState::kSucceeded, summary, "done");
  state = store.get_run(run);
  REQUIRE(state.has_value());
  CHECK(state->state == RunState::kSucceeded);
  CHECK(state->summary_json == summary);
  CHECK(state->message == "done");
  CHECK(store.metrics(run).size() == 1);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: concurrent writers and readers on several threads lose nothing") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::uint64_t> run_ids(kThreads);
  std::vector<std::vector<std::uint64_t>> forward_ids(kThreads);
  std::atomic<int> errors{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          run_ids[t] = store.create_run("thread-" + std::to_string(t), "", {});
          for (int e = 0; e < kPerThread; ++e) {
            store.add_metric(run_ids[t], metric_for_epoch(e));
            forward_ids[t].push_back(store.record_forward(make_forward(100 * t + e)));
            if (store.metrics(run_ids[t]).size() != static_cast<std::size_t>(e + 1)) ++errors;
            store.list_runs(3);
          }
        } catch (const std::exception&) {
          ++errors;
        }
      });
    }
  }
  CHECK(errors.load() == 0);
  for (int t = 0; t < kThreads; ++t) {
    const auto metrics = store.metrics(run_ids[t]);
    REQUIRE(metrics.size() == kPerThread);
    for (int e = 0; e < kPerThread; ++e) check_metric_equal(metrics[e], metric_for_epoch(e));
    for (int e = 0; e < kPerThread; ++e) {
      const auto got = store.get_forward(forward_ids[t][e]);
      REQUIRE(got.has_value());
      CHECK(bit_equal(got->x, float32_rounded(make_forward(100 * t + e).x)));
    }
  }
  CHECK(store.list_runs().size() == kThreads);
  CHECK(store.integrity_ok());
}

// ---- kill -9 --------------------------------------------------------------------------------

// What the child reports through the pipe, each only after the store call has returned.
struct Ack {
  enum Kind : std::int64_t { kRun = 1, kMetric = 2, kForward = 3 };
  std::int64_t kind = 0;
  std::int64_t value = 0;
};

void write_ack(int fd, Ack ack) {
  // 16 bytes < PIPE_BUF: the write is atomic.
  if (::write(fd, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) ::_exit(5);
}

// The child: writes metrics (and every few epochs a forward record) as fast as it can, forever,
// acknowledging each after the call returned. Never returns; is killed by the parent.
[[noreturn]] void crash_child(const std::string& path, int fd) {
  try {
    RunStore store(path);
    const std::uint64_t run_id = store.create_run("crash", "epochs: forever", {"SIM-A"});
    write_ack(fd, {Ack::kRun, static_cast<std::int64_t>(run_id)});
    for (int epoch = 0;; ++epoch) {
      store.add_metric(run_id, metric_for_epoch(epoch));
      write_ack(fd, {Ack::kMetric, epoch});
      if (epoch % 3 == 0) {
        const std::uint64_t id = store.record_forward(make_forward(epoch));
        write_ack(fd, {Ack::kForward, static_cast<std::int64_t>(id)});
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash child: %s\n", e.what());
    ::_exit(3);
  }
}

// Reads acks from the pipe; handles reads that end inside a record.
class AckReader {
 public:
  explicit AckReader(int fd) : fd_(fd) {}
  ~AckReader() { ::close(fd_); }
  AckReader(const AckReader&) = delete;
  AckReader& operator=(const AckReader&) = delete;

  // Reads what is available within `timeout_ms`; false on end of file (writer gone) or timeout.
  bool read_some(int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) return false;
    pending_.append(chunk, static_cast<std::size_t>(n));
    while (pending_.size() >= sizeof(Ack)) {
      Ack ack;
      std::memcpy(&ack, pending_.data(), sizeof ack);
      pending_.erase(0, sizeof ack);
      if (ack.kind == Ack::kRun) run_id = static_cast<std::uint64_t>(ack.value);
      if (ack.kind == Ack::kMetric) metric_epochs.push_back(static_cast<int>(ack.value));
      if (ack.kind == Ack::kForward) forward_ids.push_back(static_cast<std::uint64_t>(ack.value));
    }
    return true;
  }

  std::uint64_t run_id = 0;
  std::vector<int> metric_epochs;
  std::vector<std::uint64_t> forward_ids;

 private:
  int fd_;
  std::string pending_;
};

TEST_CASE("run_store: acknowledged writes survive kill -9 in the middle of writing") {
  TempDir dir;
  const std::string path = dir.file("crash.db");
  // Different delays after the first acks, so that the kill lands at different points of the
  // write loop (mostly inside a commit: the WAL fsync dominates each iteration).
  const int kill_delays_us[] = {0, 1500, 7000, 20000};
  for (int round = 0; round < static_cast<int>(std::size(kill_delays_us)); ++round) {
    CAPTURE(round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);  // nothing buffered may be written twice by the child
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      crash_child(path, fds[1]);
    }
    ::close(fds[1]);
    AckReader reader(fds[0]);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool child_alive = true;
    while (reader.metric_epochs.size() < 10 && std::chrono::steady_clock::now() < deadline) {
      if (!reader.read_some(1000)) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          child_alive = false;
          break;
        }
      }
    }
    if (kill_delays_us[round] > 0) ::usleep(static_cast<useconds_t>(kill_delays_us[round]));
    ::kill(pid, SIGKILL);
    int status = 0;
    if (child_alive) REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(child_alive);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the child ended by itself: see its stderr");
    REQUIRE(WTERMSIG(status) == SIGKILL);
    while (reader.read_some(0)) {
    }  // acks written before the kill
    REQUIRE(reader.run_id != 0);
    REQUIRE(reader.metric_epochs.size() >= 10);

    RunStore store(path);
    CHECK(store.integrity_ok());
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{reader.run_id});
    const auto run = store.get_run(reader.run_id);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kAborted);

    // Every acknowledged epoch is there, bit-exact; at most one more (committed, not yet acked).
    const auto metrics = store.metrics(reader.run_id);
    const std::size_t acked = reader.metric_epochs.size();
    CHECK(reader.metric_epochs.back() == static_cast<int>(acked) - 1);
    REQUIRE(metrics.size() >= acked);
    CHECK(metrics.size() <= acked + 1);
    for (std::size_t e = 0; e < metrics.size(); ++e) {
      check_metric_equal(metrics[e], metric_for_epoch(static_cast<int>(e)));
    }
    for (std::size_t k = 0; k < reader.forward_ids.size(); ++k) {
      const auto record = store.get_forward(reader.forward_ids[k]);
      REQUIRE(record.has_value());
      CHECK(bit_equal(record->x, float32_rounded(make_forward(3 * k).x)));
    }
  }
}

}  // namespace
}  // namespace pnn::daemon
