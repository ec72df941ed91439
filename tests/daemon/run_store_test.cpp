// Tests for the SQLite run store: round trips, ordering, recovery on open, refusal of files it
// must not touch, and errors. Forward records: run_store_forward_test.cpp; schema migrations:
// run_store_migration_test.cpp; disk full, threads and kill -9: run_store_durability_test.cpp.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

TEST_CASE("run_store: a new store is empty and passes the integrity check") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  CHECK(store.aborted_on_open().empty());
  CHECK(store.list_runs().empty());
  CHECK_FALSE(store.get_run(1).has_value());
  CHECK_FALSE(store.get_forward(1).has_value());
  CHECK_FALSE(store.latest_calibration("SIM-0001").has_value());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: runs round-trip with their device serials, checkpoint and result") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::string yaml = std::string("model: pat\nlr: 0.01\nnote: \"\xc3\xa9t\xc3\xa9\"\n") +
                           std::string(1, '\0') + "after-nul";
  const std::int64_t before = wall_ns();
  const std::uint64_t id = store.create_run("fmnist-pat", yaml, {"SIM-B", "SIM-A", "SIM-B"});
  const std::int64_t after = wall_ns();

  auto run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->run_id == id);
  CHECK(run->name == "fmnist-pat");
  CHECK(run->config_yaml == yaml);
  CHECK(run->state == RunState::kRunning);
  CHECK(run->started_ns >= before);
  CHECK(run->started_ns <= after);
  CHECK(run->finished_ns == 0);
  CHECK(run->epochs_done == 0);
  CHECK(run->checkpoint_path.empty());
  CHECK(run->summary_json.empty());
  CHECK(run->message.empty());
  CHECK(run->device_serials == std::vector<std::string>{"SIM-B", "SIM-A", "SIM-B"});

  store.set_checkpoint(id, "/var/lib/pnn/runs/1/epoch-3.ckpt", 3);
  store.finish_run(id, RunState::kFailed, R"({"accuracy":0.5})", "device SIM-A faulted");
  run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->state == RunState::kFailed);
  CHECK(run->checkpoint_path == "/var/lib/pnn/runs/1/epoch-3.ckpt");
  CHECK(run->epochs_done == 3);
  CHECK(run->summary_json == R"({"accuracy":0.5})");
  CHECK(run->message == "device SIM-A faulted");
  CHECK(run->finished_ns >= run->started_ns);

  // Resume: RUNNING again, result cleared, checkpoint and metrics kept.
  store.add_metric(id, metric_for_epoch(0));
  store.reopen_run(id);
  run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->state == RunState::kRunning);
  CHECK(run->finished_ns == 0);
  CHECK(run->summary_json.empty());
  CHECK(run->message.empty());
  CHECK(run->epochs_done == 3);
  CHECK(run->checkpoint_path == "/var/lib/pnn/runs/1/epoch-3.ckpt");
  CHECK(store.metrics(id).size() == 1);

  const std::uint64_t no_devices = store.create_run("twin-only", "", {});
  run = store.get_run(no_devices);
  REQUIRE(run.has_value());
  CHECK(run->device_serials.empty());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: list_runs is newest first and honours the limit") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(store.create_run("run-" + std::to_string(i), "", {"SIM-" + std::to_string(i)}));
  }
  store.finish_run(ids[1], RunState::kSucceeded, "{}");

  const auto all = store.list_runs();
  REQUIRE(all.size() == 5);
  for (std::size_t k = 0; k < all.size(); ++k) {
    CHECK(all[k].run_id == ids[4 - k]);
    CHECK(all[k].name == "run-" + std::to_string(4 - k));
    CHECK(all[k].device_serials == std::vector<std::string>{"SIM-" + std::to_string(4 - k)});
  }
  CHECK(all[3].state == RunState::kSucceeded);

  const auto two = store.list_runs(2);
  REQUIRE(two.size() == 2);
  CHECK(two[0].run_id == ids[4]);
  CHECK(two[1].run_id == ids[3]);
  CHECK(store.list_runs(0).empty());
}

TEST_CASE("run_store: metrics round-trip bit-exactly in insertion order, per run") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::uint64_t a = store.create_run("a", "", {});
  const std::uint64_t b = store.create_run("b", "", {});

  std::vector<MetricRecord> want;
  for (int epoch : {3, 1, 2, 2, 0}) want.push_back(metric_for_epoch(epoch));
  want[1].train_loss = -0.0;
  want[1].train_accuracy = std::numeric_limits<double>::denorm_min();
  want[2].train_loss = std::numeric_limits<double>::infinity();
  want[2].seconds = -std::numeric_limits<double>::infinity();
  want[3].train_accuracy = 1e300;
  want[3].phase = "pat/with spaces and \xce\xb8";
  for (std::size_t k = 0; k < want.size(); ++k) {
    store.add_metric(a, want[k]);
    store.add_metric(b, metric_for_epoch(90 + static_cast<int>(k)));
  }

  const auto got = store.metrics(a);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    check_metric_equal(got[i], want[i]);
  }
  CHECK(store.metrics(b).size() == want.size());
  CHECK(store.metrics(b + 100).empty());

  // SQLite has no NaN: a NaN metric is stored as NULL and comes back as a NaN.
  MetricRecord diverged = metric_for_epoch(7);
  diverged.train_loss = std::numeric_limits<double>::quiet_NaN();
  store.add_metric(b, diverged);
  const auto b_metrics = store.metrics(b);
  REQUIRE(b_metrics.size() == want.size() + 1);
  CHECK(std::isnan(b_metrics.back().train_loss));
  CHECK(bits(b_metrics.back().seconds) == bits(diverged.seconds));
}


TEST_CASE("run_store: a metric for an existing (run, phase, epoch) replaces the row") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("resumed", "", {});
  const std::uint64_t other = store.create_run("other", "", {});
  MetricRecord first = metric_for_epoch(4);
  first.phase = "pat";
  MetricRecord second = first;  // the same key, re-run after a crash
  second.train_loss = 0.125;
  second.train_accuracy = -0.0;
  second.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  second.seconds = 7.5;
  MetricRecord later = metric_for_epoch(5);
  later.phase = "pat";
  MetricRecord same_epoch_other_phase = first;
  same_epoch_other_phase.phase = "in-silico";

  store.add_metric(run, first);
  store.add_metric(run, later);
  store.add_metric(run, same_epoch_other_phase);
  store.add_metric(other, first);  // another run: its own key
  store.add_metric(run, second);

  const auto got = store.metrics(run);
  REQUIRE(got.size() == 3);
  // The replaced row counts as written last.
  check_metric_equal(got[0], later);
  check_metric_equal(got[1], same_epoch_other_phase);
  CHECK(got[2].phase == "pat");
  CHECK(got[2].epoch == 4);
  CHECK(bits(got[2].train_loss) == bits(0.125));
  CHECK(bits(got[2].train_accuracy) == bits(-0.0));
  CHECK(std::isnan(got[2].test_accuracy));
  CHECK(bits(got[2].seconds) == bits(7.5));
  REQUIRE(store.metrics(other).size() == 1);
  check_metric_equal(store.metrics(other)[0], first);

  // The same write once more changes nothing but its position.
  store.add_metric(run, second);
  CHECK(store.metrics(run).size() == 3);
  RawDb raw(path);
  CHECK(raw.scalar("SELECT count(*) FROM metrics") == "4");
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: a run keeps its owner") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t owned = 0, anonymous = 0;
  const std::string owner = "alice@lab-pc \xce\xb8";
  {
    RunStore store(path);
    owned = store.create_run("owned", "", {"SIM-A"}, owner);
    anonymous = store.create_run("anonymous", "", {"SIM-B"});  // the default argument
    const auto run = store.get_run(owned);
    REQUIRE(run.has_value());
    CHECK(run->owner == owner);
    CHECK(run->device_serials == std::vector<std::string>{"SIM-A"});
    CHECK(store.get_run(anonymous)->owner.empty());
    store.finish_run(owned, RunState::kSucceeded, "{}");
    store.reopen_run(owned);  // resuming keeps the owner
    CHECK(store.get_run(owned)->owner == owner);
  }
  RunStore store(path);
  const auto runs = store.list_runs();
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].run_id == anonymous);
  CHECK(runs[0].owner.empty());
  CHECK(runs[1].run_id == owned);
  CHECK(runs[1].owner == owner);
}

TEST_CASE("run_store: job ids strictly increase across closing and reopening the store") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    ids.push_back(store.allocate_job_id());
    ids.push_back(store.allocate_job_id());
    (void)store.create_run("runs do not move the job counter", "", {});
  }
  for (int reopen = 0; reopen < 3; ++reopen) {
    RunStore store(path);
    ids.push_back(store.allocate_job_id());
  }
  CHECK(ids.front() == 1);
  for (std::size_t k = 1; k < ids.size(); ++k) {
    CAPTURE(k);
    CHECK(ids[k] > ids[k - 1]);
  }
  // Concurrent callers get distinct ids, all above the ones handed out before.
  RunStore store(path);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20;
  std::vector<std::vector<std::uint64_t>> got(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kPerThread; ++k) got[t].push_back(store.allocate_job_id());
      });
    }
  }
  std::vector<std::uint64_t> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  CHECK(all.front() > ids.back());
  CHECK(all.size() == kThreads * kPerThread);
}


TEST_CASE("run_store: the latest calibration of each device round-trips") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  CalibrationRecord old_a{.device_serial = "SIM-A",
                          .phi = tricky_matrix(12, 1, 5),
                          .mse_before = 0.5,
                          .mse_after = -0.0,
                          .created_ns = 1000};
  CalibrationRecord b{.device_serial = "SIM-B",
                      .phi = tricky_matrix(3, 1, 6),
                      .mse_before = 0.25,
                      .mse_after = 0.125,
                      .created_ns = 5000};
  CalibrationRecord new_a{.device_serial = "SIM-A",
                          .phi = tricky_matrix(12, 1, 7),
                          .mse_before = 0.3,
                          .mse_after = 1e-300,
                          .created_ns = 500};  // an older clock: insertion order decides "latest"
  const std::uint64_t id_old_a = store.add_calibration(old_a);
  const std::uint64_t id_b = store.add_calibration(b);
  const std::uint64_t id_new_a = store.add_calibration(new_a);
  CHECK(id_old_a < id_b);
  CHECK(id_b < id_new_a);

  const auto a = store.latest_calibration("SIM-A");
  REQUIRE(a.has_value());
  CHECK(a->calibration_id == id_new_a);
  CHECK(a->device_serial == "SIM-A");
  CHECK(bit_equal(a->phi, new_a.phi));
  CHECK(bits(a->mse_before) == bits(new_a.mse_before));
  CHECK(bits(a->mse_after) == bits(new_a.mse_after));
  CHECK(a->created_ns == 500);

  const auto got_b = store.latest_calibration("SIM-B");
  REQUIRE(got_b.has_value());
  CHECK(got_b->calibration_id == id_b);
  CHECK(bit_equal(got_b->phi, b.phi));
  CHECK_FALSE(store.latest_calibration("SIM-C").has_value());

  // created_ns == 0 means "now".
  const std::int64_t before = wall_ns();
  store.add_calibration({.device_serial = "SIM-C", .phi = Vector::Zero(2)});
  const auto c = store.latest_calibration("SIM-C");
  REQUIRE(c.has_value());
  CHECK(c->created_ns >= before);
}

TEST_CASE("run_store: reopening marks RUNNING runs ABORTED and keeps them resumable") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t running = 0;
  std::uint64_t done = 0;
  std::uint64_t also_running = 0;
  {
    RunStore store(path);
    running = store.create_run("left-running", "", {"SIM-A"});
    store.add_metric(running, metric_for_epoch(0));
    store.set_checkpoint(running, "ckpt-1", 1);
    done = store.create_run("finished", "", {});
    store.finish_run(done, RunState::kSucceeded, R"({"ok":true})");
    also_running = store.create_run("also-left-running", "", {});
  }  // destroyed without finishing: as after a crash, the runs are still RUNNING in the file
  {
    const std::int64_t before = wall_ns();
    RunStore store(path);
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{running, also_running});
    const auto run = store.get_run(running);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kAborted);
    CHECK(run->finished_ns >= before);
    CHECK_FALSE(run->message.empty());
    CHECK(run->checkpoint_path == "ckpt-1");
    CHECK(run->epochs_done == 1);
    CHECK(store.metrics(running).size() == 1);
    const auto finished = store.get_run(done);
    REQUIRE(finished.has_value());
    CHECK(finished->state == RunState::kSucceeded);
    CHECK(finished->summary_json == R"({"ok":true})");

    store.reopen_run(running);  // resumed, then the daemon dies again
    store.add_metric(running, metric_for_epoch(1));
  }
  {
    RunStore store(path);
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{running});
    CHECK(store.metrics(running).size() == 2);
  }
  {
    RunStore store(path);
    CHECK(store.aborted_on_open().empty());
    CHECK(store.integrity_ok());
  }
}

TEST_CASE("run_store: a newer schema version is refused, naming the file and the versions") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  { RunStore store(path); }
  // PRAGMA user_version lives in the database header: 4 bytes big-endian at offset 60.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 100);
  REQUIRE(bytes.compare(0, 16, std::string("SQLite format 3\0", 16)) == 0);
  REQUIRE(bytes.substr(60, 4) == std::string("\0\0\0\x05", 4));
  bytes.replace(60, 4, std::string("\0\0\0\x63", 4));  // version 99
  write_bytes(path, bytes);

  const std::string message = error_message_of([&] { RunStore store(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("99") != std::string::npos);
  CHECK(message.find("1 to 5") != std::string::npos);
  CHECK(read_bytes(path) == bytes);  // left untouched
}

TEST_CASE("run_store: a file that is not an SQLite database is refused and left untouched") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::mt19937_64 rng(42);
  std::string garbage(8192, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  const std::string text = "model: pat\nthis is a YAML file, not a database\n";

  for (const std::string& content : {garbage, text}) {
    write_bytes(path, content);
    const std::string message = error_message_of([&] { RunStore store(path); });
    CAPTURE(message);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("not an SQLite database") != std::string::npos);
    CHECK(read_bytes(path) == content);
  }
}

TEST_CASE("run_store: a database with a corrupted schema page is a StoreError, not a crash") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    RunStore store(path);
    for (int i = 0; i < 20; ++i) store.create_run("run", "", {"SIM-A"});
  }
  // Page 1 holds the 100-byte file header, then the b-tree of the schema: overwrite the latter.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 4096);
  for (std::size_t i = 100; i < 4096; ++i) bytes[i] = static_cast<char>(0xA5);
  write_bytes(path, bytes);

  const std::string message = error_message_of([&] { RunStore store(path); });
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("corrupt") != std::string::npos);
}

TEST_CASE("run_store: a missing parent directory is a StoreError naming the path") {
  TempDir dir;
  const std::string path = dir.file("no-such-dir/runs.db");
  const std::string message = error_message_of([&] { RunStore store(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("parent directory") != std::string::npos);
}

TEST_CASE("run_store: only one store at a time may own a database file") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t id = 0;
  {
    RunStore first(path);
    id = first.create_run("owned", "", {});
    const std::string message = error_message_of([&] { RunStore second(path); });
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("already open") != std::string::npos);
    // Another name for the same file shares the lock.
    const std::string link = dir.file("link.db");
    fs::create_symlink(path, link);
    CHECK_THROWS_AS(RunStore{link}, StoreError);
    // The refused open must not have aborted the first store's running run.
    const auto run = first.get_run(id);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kRunning);
  }
  RunStore again(path);
  CHECK(again.aborted_on_open() == std::vector<std::uint64_t>{id});
}

TEST_CASE("run_store: writes that name an unknown run are errors") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t id = store.create_run("known", "", {});
  const std::uint64_t unknown = id + 41;
  CHECK(error_message_of([&] { store.add_metric(unknown, metric_for_epoch(0)); }).find(path) !=
        std::string::npos);
  CHECK(error_message_of([&] { store.set_checkpoint(unknown, "x", 1); }).find("no run with id") !=
        std::string::npos);
  CHECK_THROWS_AS(store.finish_run(unknown, RunState::kSucceeded, "{}"), StoreError);
  CHECK_THROWS_AS(store.reopen_run(unknown), StoreError);
  CHECK_THROWS_AS(store.finish_run(id, RunState::kRunning, "{}"), std::invalid_argument);
  // Failed writes leave nothing behind and the store keeps working.
  CHECK(store.metrics(unknown).empty());
  store.add_metric(id, metric_for_epoch(0));
  CHECK(store.metrics(id).size() == 1);
  CHECK(store.get_run(id)->state == RunState::kRunning);
  CHECK(store.integrity_ok());
}

}  // namespace
}  // namespace pnn::daemon
