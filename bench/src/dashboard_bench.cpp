// dashboard-overhead and dashboard-paint: what the web dashboard costs the devices' work, and how
// fast its pages draw a large run (docs/dashboard.md). Both need Debian's chromium (and
// dashboard-paint python3-selenium with chromium-driver); without them they say so and stop.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <utility>  // before Asio (Boost 1.74 + C++20 on GCC 12)
#include <boost/asio.hpp>

#include <array>
#include <atomic>

#include "bench_common.hpp"
#include "child_process.hpp"
#include "daemon_bench_common.hpp"
#include "pnn/daemon/protocol.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/drivers/registry.hpp"

extern char** environ;

namespace pnn::bench::detail {

namespace fs = std::filesystem;
namespace v1 = pnn::v1;
using nlohmann::json;

namespace {

const char* chromium_path() {
  const char* env = std::getenv("PNN_CHROMIUM");
  return env && *env ? env : "/usr/bin/chromium";
}

// A headless Chromium showing `url` until destroyed (its own process group, so its helper
// processes go with it).
class HeadlessBrowser {
 public:
  HeadlessBrowser(const std::string& url, const BenchDir& dir) : process_(args(url, dir)) {}

 private:
  static std::vector<std::string> args(const std::string& url, const BenchDir& dir) {
    if (!fs::exists(chromium_path())) {
      throw std::runtime_error(std::string(chromium_path()) +
                               " not found: install chromium (bash scripts/setup.sh --test) or set PNN_CHROMIUM");
    }
    return {chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--window-size=1400,1000",
            "--user-data-dir=" + dir.file("chromium-profile"), url};
  }
  ChildProcess process_;
};

// Reads the dashboard's event stream as fast as it comes, without rendering anything: what pnnd
// itself spends on a connected page, apart from the browser's own CPU.
class StreamReader {
 public:
  explicit StreamReader(const std::string& url) {
    const std::string rest = url.substr(7);
    const auto colon = rest.rfind(':');
    const auto address = boost::asio::ip::make_address(rest.substr(0, colon));
    const auto port = static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)));
    socket_.connect({address, port});
    const std::string request = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    boost::asio::write(socket_, boost::asio::buffer(request));
    thread_ = std::thread([this] {
      std::array<char, 16384> buf{};
      boost::system::error_code ec;
      while (!ec) bytes_ += socket_.read_some(boost::asio::buffer(buf), ec);
    });
  }
  ~StreamReader() {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    thread_.join();
  }
  std::uint64_t bytes() const { return bytes_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_{io_};
  std::atomic<std::uint64_t> bytes_{0};
  std::thread thread_;
};

// CPU seconds of this process's threads named `name` (pnnd names its HTTP thread "pnnd-http").
double threads_cpu_s(const std::string& name) {
  double total = 0.0;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string n;
    std::getline(comm, n);
    if (n != name) continue;
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the ")" closing the name: state is field 3; utime and stime are 14 and 15.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int k = 3; k <= 15 && rest >> field; ++k) {
      if (k == 14) utime = std::stod(field);
      if (k == 15) stime = std::stod(field);
    }
    total += (utime + stime) / tick;
  }
  return total;
}

// A job that keeps running (and publishing an epoch every few tens of ms) until cancelled: the
// "live job" whose curves the browser redraws. Its device waits 2 ms per call, as a real setup
// does, so the job is paced by its device rather than by the CPU: with a CPU-bound job, the two
// cores were shared three ways and the job's share moved with the arm (283 epochs in the timed
// window without the dashboard, 1333 with the browser), which said more about the scheduler than
// about the dashboard.
const char* kLiveDevice = "sim://mechanical-oscillators?seed=2&n=4&faults=delay_ms:2";
const char* kLiveJob = R"(name: live
seed: 0
data: {name: digits, max_train: 128, max_test: 32}
devices: {small: small}
network:
  - affine: 4
  - physical: small
  - affine: 10
training: {epochs: 100000, batch_size: 32}
compare: {in_silico: false}
)";

}  // namespace

std::vector<json> dashboard_overhead(const BenchOptions& options) {
  constexpr Index kBatch = 256;
  const std::string address = "sim://mechanical-oscillators?seed=1&n=64";
  const int batches = options.epochs > 0 ? options.epochs : 1800;
  constexpr int kWindow = 2;
  const Matrix x = uniform(kBatch, 64, -1.0, 1.0, options.seed + 1);
  const Vector theta = drivers::make_physical_system(address)->nominal_twin()->initial_params(options.seed);
  // Three arms, in rotating order so that a change of machine load hits each alike: no
  // dashboard; the dashboard with its event stream read by a client that renders nothing (pnnd's
  // own cost); the dashboard open in headless Chromium on this machine (pnnd's cost plus the
  // browser's CPU on the same two cores).
  enum Arm { kWithout = 0, kStream = 1, kBrowser = 2 };
  const char* arm_names[] = {"without", "stream_only", "browser"};
  double seconds[3] = {0, 0, 0}, cpu_s[3] = {0, 0, 0}, http_cpu_s[3] = {0, 0, 0};
  std::uint64_t samples[3] = {0, 0, 0}, job_epochs[3] = {0, 0, 0}, stream_bytes = 0;
  std::vector<double> rates[3];
  constexpr int kRounds = 9;
  for (int round = 0; round < kRounds; ++round) {
    const Arm arm = static_cast<Arm>((round + round / 3) % 3);
    const int n = batches / kRounds + (round < batches % kRounds ? 1 : 0);
    BenchDir dir("dashboard-overhead");
    daemon::DaemonConfig config = loopback_config(dir);
    config.heartbeat_ms = 100;
    config.devices = {{.name = "osc", .address = address, .autostart = true},
                      {.name = "small", .address = kLiveDevice, .autostart = true}};
    if (arm != kWithout) config.http.bind = "127.0.0.1:0";
    InProcessDaemon daemon(config);
    auto client = bench_client(daemon.rpc(), "bench-dashboard-overhead");
    v1::Request submit;
    submit.mutable_submit_job()->set_config_yaml(kLiveJob);
    submit.mutable_submit_job()->set_config_name("live.yaml");
    const std::uint64_t job = call_ok(*client, submit, "SubmitJob").submit_job().job_id();
    std::unique_ptr<HeadlessBrowser> browser;
    std::unique_ptr<StreamReader> reader;
    if (arm == kBrowser) browser = std::make_unique<HeadlessBrowser>(daemon.http() + "/#jobs", dir);
    if (arm == kStream) reader = std::make_unique<StreamReader>(daemon.http());
    // Let the page load and the job reach its stride before timing.
    std::this_thread::sleep_for(std::chrono::seconds(4));
    v1::Request request = forward_request("osc", acquire(*client, "osc"), x, theta);
    (void)call_ok(*client, request, "warm-up Forward");
    v1::Request status;
    status.mutable_job_status()->set_job_id(job);
    const auto epochs_before = call_ok(*client, status, "JobStatus").job_status().jobs(0).epochs_done();
    const double cpu0 = process_cpu_seconds(), http0 = threads_cpu_s("pnnd-http");
    const double s = pipelined_forwards(*client, request, n, kWindow, "dashboard-overhead");
    cpu_s[arm] += process_cpu_seconds() - cpu0;
    http_cpu_s[arm] += threads_cpu_s("pnnd-http") - http0;
    job_epochs[arm] += call_ok(*client, status, "JobStatus").job_status().jobs(0).epochs_done() - epochs_before;
    v1::Request cancel;
    cancel.mutable_cancel_job()->set_job_id(job);
    (void)client->call(cancel);
    if (reader) stream_bytes += reader->bytes();
    reader.reset();
    browser.reset();
    daemon.stop();
    seconds[arm] += s;
    samples[arm] += static_cast<std::uint64_t>(n) * kBatch;
    rates[arm].push_back(n * static_cast<double>(kBatch) / s);
  }
  json out = {{"name", "dashboard-overhead"},
              {"device", address},
              {"batch", kBatch},
              {"batches", batches},
              {"live_job", std::string("4-oscillator digits job on ") + kLiveDevice + ", running through every arm"},
              {"browser", std::string(chromium_path()) + " --headless=new on /#jobs, on this machine"},
              {"stream_bytes_read", stream_bytes},
              {"target_ratio_min", 0.98}};
  for (int a = 0; a < 3; ++a) {
    out[std::string("samples_per_s_") + arm_names[a]] = static_cast<double>(samples[a]) / seconds[a];
    out[std::string("rounds_") + arm_names[a]] = rates[a];
    out[std::string("job_epochs_while_timed_") + arm_names[a]] = job_epochs[a];
    // pnnd's CPU (with the bench client's and the job's) per forwarded sample, and its HTTP
    // thread's: robust to the machine's load in a way that throughput is not.
    out[std::string("cpu_us_per_sample_") + arm_names[a]] = 1e6 * cpu_s[a] / static_cast<double>(samples[a]);
    out[std::string("http_thread_cpu_s_") + arm_names[a]] = http_cpu_s[a];
  }
  const double cpu_base = cpu_s[kWithout] / static_cast<double>(samples[kWithout]);
  out["cpu_ratio_stream_only"] = cpu_base / (cpu_s[kStream] / static_cast<double>(samples[kStream]));
  out["cpu_ratio_browser"] = cpu_base / (cpu_s[kBrowser] / static_cast<double>(samples[kBrowser]));
  const double base = static_cast<double>(samples[kWithout]) / seconds[kWithout];
  out["ratio_stream_only"] = static_cast<double>(samples[kStream]) / seconds[kStream] / base;
  out["ratio_browser"] = static_cast<double>(samples[kBrowser]) / seconds[kBrowser] / base;
  out["wall_s"] = seconds[0] + seconds[1] + seconds[2];
  return {out};
}

std::vector<json> dashboard_paint(const BenchOptions& options) {
  const int points = options.epochs > 0 ? options.epochs : 10000;
  BenchDir dir("dashboard-paint");
  daemon::DaemonConfig config = loopback_config(dir);
  config.http.bind = "127.0.0.1:0";
  fs::create_directories(fs::path(config.store_path).parent_path());
  {
    // A finished run with `points` metric rows (two phases), as a days-long job leaves behind.
    daemon::RunStore store(config.store_path);
    const auto run = store.create_run("paint-" + std::to_string(points), "name: paint\n", {"SIM-OSC-1"});
    std::mt19937_64 rng(options.seed);
    std::uniform_real_distribution<double> noise(-0.01, 0.01);
    for (int i = 0; i < points; ++i) {
      const int epoch = i / 2 + 1;
      const double t = epoch / static_cast<double>(points / 2);
      daemon::MetricRecord m{.phase = i % 2 ? "in-silico" : "pat", .epoch = epoch,
                             .train_loss = 2.3 * std::exp(-5 * t) + 0.05 + noise(rng),
                             .train_accuracy = 1 - 0.9 * std::exp(-5 * t) + noise(rng),
                             .test_accuracy = 0.95 - 0.85 * std::exp(-5 * t) + noise(rng), .seconds = 0.3};
      store.add_metric(run, m);
    }
    store.finish_run(run, daemon::RunState::kSucceeded, "{\"name\":\"paint\"}");
  }
  InProcessDaemon daemon(config);
  if (const char* hold = std::getenv("PNN_PAINT_HOLD"); hold && *hold) {  // debugging: keep it up
    std::fprintf(stderr, "dashboard-paint: %s\n", daemon.http().c_str());
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(hold)));
  }
  const std::string script = source_file("bench/scripts/dashboard_paint.py");
  const std::string cmd = "/usr/bin/python3 " + script + " " + daemon.http() + " 1 5";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int rc = ::pclose(pipe);
  if (rc != 0) throw std::runtime_error(cmd + " failed (" + std::to_string(rc) + "): " + out);
  // The script's last line is its JSON result.
  while (!out.empty() && out.back() == '\n') out.pop_back();
  json result = json::parse(out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1));
  result["name"] = "dashboard-paint";
  result["points"] = points;
  result["target_first_paint_ms_max"] = 1000;
  return {result};
}

}  // namespace pnn::bench::detail
