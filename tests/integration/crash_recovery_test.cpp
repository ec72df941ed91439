// The real pnnd binary, killed with SIGKILL in the middle of a training job and started again on
// the same run store: the run is ABORTED with a message, the database is intact, every metric a
// client saw before the kill is stored, and the run resumes from its checkpoint to SUCCEEDED.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <utility>

#include "daemon/daemon_test_util.hpp"
#include "pnn/bench/daemon_process.hpp"
#include "pnn/daemon/run_store.hpp"

#ifdef PNN_PNND_PATH

namespace pnn::daemon::test {

using bench::DaemonProcess;
using bench::DaemonProcessError;
using bench::DaemonProcessOptions;
namespace {

// Epochs take ~20 ms in Release and ~30× that under ASan: enough of them that the kill after the
// first one lands well inside the run, few enough that the resume stays short.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kEpochs = 10;
#else
constexpr int kEpochs = 30;
#endif

// A PAT job on the daemon's device "osc": short epochs, many of them, so that the kill lands
// well inside the run.
std::string job_yaml() {
  return "name: crash-test\n"
         "seed: 3\n"
         "data: {name: digits, max_train: 512, max_test: 128}\n"
         "devices: {osc: osc}\n"
         "network:\n"
         "  - physical: osc\n"
         "  - slice: {first: 0, count: 10, gain: 3.0}\n"
         "training: {method: pat, batch_size: 16, epochs: " +
         std::to_string(kEpochs) +
         "}\n"
         "compare: {in_silico: false}\n";
}

std::string write_lab(const TempDir& dir) {
  const std::string path = dir.file("lab.yaml");
  std::ofstream out(path);
  out << "version: 1\n"
      << "rpc: {bind: 'tcp://127.0.0.1:*'}\n"
      << "telemetry: {bind: 'tcp://127.0.0.1:*', heartbeat_ms: 100}\n"
      << "store: {path: '" << dir.file("store/pnnd.sqlite") << "', runs_dir: '" << dir.file("runs")
      << "'}\n"
      << "devices:\n"
      << "  osc: {address: 'sim://mechanical-oscillators?seed=1&n=64', autostart: true}\n";
  return path;
}

DaemonProcessOptions pnnd_options(const TempDir& dir, const std::string& config) {
  return {.executable = PNN_PNND_PATH, .config_path = config, .log_path = dir.file("pnnd.log")};
}

using MetricKey = std::pair<std::string, std::uint32_t>;  // phase, epoch

void note(std::map<MetricKey, v1::EpochMetrics>& seen, const v1::JobInfo& info) {
  for (const auto& m : info.metrics()) seen[{m.phase(), m.epoch()}] = m;
}

v1::RunInfo get_run(Client& client, std::uint64_t run_id,
                    std::vector<v1::EpochMetrics>* metrics = nullptr) {
  v1::Request r;
  r.mutable_get_run()->set_run_id(run_id);
  const v1::Reply reply = client.call(r);
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
  if (metrics) metrics->assign(reply.get_run().metrics().begin(), reply.get_run().metrics().end());
  return reply.get_run().run();
}

v1::JobInfo job_info(Client& client, std::uint64_t job_id) {
  v1::Request r;
  r.mutable_job_status()->set_job_id(job_id);
  const v1::Reply reply = client.call(r);
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
  REQUIRE(reply.job_status().jobs_size() == 1);
  return reply.job_status().jobs(0);
}

// Every acknowledged metric is among `stored`, bit for bit.
void check_stored(const std::map<MetricKey, v1::EpochMetrics>& acked,
                  const std::vector<v1::EpochMetrics>& stored) {
  for (const auto& [key, m] : acked) {
    CAPTURE(key.first);
    CAPTURE(key.second);
    bool found = false;
    for (const auto& s : stored) {
      found |= s.phase() == m.phase() && s.epoch() == m.epoch() &&
               s.train_loss() == m.train_loss() && s.train_accuracy() == m.train_accuracy() &&
               s.test_accuracy() == m.test_accuracy() && s.seconds() == m.seconds();
    }
    CHECK(found);
  }
}

}  // namespace

TEST_CASE("daemon: kill -9 during a job, then the restarted daemon marks it ABORTED and resumes it") {
  TempDir dir("crash");
  const std::string config = write_lab(dir);
  const std::string store_path = dir.file("store/pnnd.sqlite");
  std::uint64_t run_id = 0;
  std::map<MetricKey, v1::EpochMetrics> acked;

  {
    DaemonProcess pnnd(pnnd_options(dir, config));
    Subscriber telemetry(pnnd.telemetry_endpoint(), {"job/"});
    auto client = make_client(pnnd.rpc_endpoint(), "crasher");
    v1::Request submit;
    submit.mutable_submit_job()->set_config_yaml(job_yaml());
    submit.mutable_submit_job()->set_config_name("crash-test.yaml");
    const v1::Reply submitted = client->call(submit);
    REQUIRE_MESSAGE(submitted.status().code() == v1::OK, status_text(submitted));
    run_id = submitted.submit_job().run_id();
    const std::uint64_t job_id = submitted.submit_job().job_id();

    // Wait for the first epoch metric (from JobStatus or telemetry), then kill at once.
    v1::JobInfo last;
    REQUIRE(eventually(
        [&] {
          while (auto ev = telemetry.next(0ms)) note(acked, ev->second.job());
          last = job_info(*client, job_id);
          note(acked, last);
          return !acked.empty() || last.state() != v1::RUNNING;
        },
        60000ms));
    pnnd.signal(SIGKILL);
    REQUIRE_MESSAGE(last.state() == v1::RUNNING,
                    "the job ended before the kill: " << last.message());
    const auto status = pnnd.wait(10000ms);
    REQUIRE(status);
    REQUIRE(WIFSIGNALED(*status));
    CHECK(WTERMSIG(*status) == SIGKILL);
    // Events already on their way were published before the kill: acknowledged too.
    while (auto ev = telemetry.next(300ms)) note(acked, ev->second.job());
  }
  REQUIRE_FALSE(acked.empty());
  CHECK(acked.size() < kEpochs);

  // The file as the crash left it (a copy, so that the restarted daemon does the recovery).
  {
    TempDir copy("crash-copy");
    for (const char* suffix : {"", "-wal"}) {
      if (fs::exists(store_path + suffix)) {
        fs::copy_file(store_path + suffix, copy.file(std::string("pnnd.sqlite") + suffix));
      }
    }
    RunStore store(copy.file("pnnd.sqlite"));
    CHECK(store.integrity_ok());
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{run_id});
  }

  DaemonProcess pnnd(pnnd_options(dir, config));
  auto client = make_client(pnnd.rpc_endpoint(), "recoverer");
  std::vector<v1::EpochMetrics> stored;
  const v1::RunInfo aborted = get_run(*client, run_id, &stored);
  CHECK(aborted.state() == v1::ABORTED);
  CHECK(aborted.message().find("aborted") != std::string::npos);
  CHECK(aborted.finished_ns() > 0);
  CHECK(aborted.epochs_done() >= 1);
  CHECK_FALSE(aborted.checkpoint_path().empty());
  check_stored(acked, stored);
  CHECK(pnnd.log_tail(100000).find("run " + std::to_string(run_id) +
                                   " was left running by a crash") != std::string::npos);

  // Resume from the last checkpoint (the stored config is used when none is sent).
  v1::Request resume;
  resume.mutable_submit_job()->set_resume_run_id(run_id);
  const v1::Reply resumed = client->call(resume);
  REQUIRE_MESSAGE(resumed.status().code() == v1::OK, status_text(resumed));
  CHECK(resumed.submit_job().run_id() == run_id);
  const std::uint64_t job_id = resumed.submit_job().job_id();
  v1::JobInfo info = job_info(*client, job_id);
  CHECK(info.message().find("resuming from") != std::string::npos);
  CHECK(eventually(
      [&] {
        info = job_info(*client, job_id);
        return info.state() != v1::RUNNING;
      },
      120000ms));
  REQUIRE_MESSAGE(info.state() == v1::SUCCEEDED, info.message());
  const v1::RunInfo done = get_run(*client, run_id, &stored);
  CHECK(done.state() == v1::SUCCEEDED);
  CHECK(done.epochs_done() == kEpochs);
  check_stored(acked, stored);
  // The resumed part continues after the checkpoint: epochs checkpoint+1 .. kEpochs follow the
  // metrics written before the kill.
  REQUIRE(stored.size() >= kEpochs);
  CHECK(stored.back().epoch() == kEpochs);
  const std::size_t resumed_epochs = kEpochs - aborted.epochs_done();
  const auto first_resumed = stored[stored.size() - resumed_epochs];
  CHECK(first_resumed.epoch() == aborted.epochs_done() + 1);

  pnnd.signal(SIGTERM);
  const auto status = pnnd.wait(30000ms);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  RunStore store(store_path);
  CHECK(store.integrity_ok());
  CHECK(store.aborted_on_open().empty());
}

TEST_CASE("daemon process: a bad config makes pnnd exit 2 with the reason, not hang") {
  TempDir dir("bad-config");
  const std::string path = dir.file("lab.yaml");
  std::ofstream(path) << "rpc: {bind: 'tcp://0.0.0.0:7700'}\n";  // remote bind without CURVE
  try {
    DaemonProcess pnnd(pnnd_options(dir, path));
    FAIL("pnnd started with a non-loopback bind and no CURVE keys");
  } catch (const DaemonProcessError& e) {
    const std::string what = e.what();
    CHECK(what.find("exited with code 2") != std::string::npos);
    CHECK(what.find("CURVE") != std::string::npos);
  }
  DaemonProcessOptions missing = pnnd_options(dir, path);
  missing.executable = dir.file("no-such-pnnd");
  CHECK_THROWS_WITH_AS(DaemonProcess{missing}, doctest::Contains("cannot run pnnd at"),
                       DaemonProcessError);
}

}  // namespace pnn::daemon::test

#endif  // PNN_PNND_PATH
