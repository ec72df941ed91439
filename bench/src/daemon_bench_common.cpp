#include "daemon_bench_common.hpp"

#include "pnn/daemon/protocol.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

namespace pnn::bench::detail {

namespace fs = std::filesystem;
namespace v1 = pnn::v1;

BenchDir::BenchDir(const std::string& tag) {
  path_ = fs::temp_directory_path() / ("pnn-bench-" + tag + "-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(std::random_device{}()));
  fs::create_directories(path_);
}

BenchDir::~BenchDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

daemon::DaemonConfig loopback_config(const BenchDir& dir) {
  daemon::DaemonConfig c;
  c.source = "bench";
  c.rpc_bind = "tcp://127.0.0.1:*";
  c.telemetry_bind = "tcp://127.0.0.1:*";
  c.store_path = dir.file("store/pnnd.sqlite");
  c.runs_dir = dir.file("runs");
  return c;
}

InProcessDaemon::InProcessDaemon(daemon::DaemonConfig config) {
  daemon::ServerOptions options;
  options.handle_signals = false;
  options.on_log = [](const std::string& level, const std::string& text) {
    if (level != "info") std::fprintf(stderr, "pnnd %s: %s\n", level.c_str(), text.c_str());
  };
  server_ = std::make_unique<daemon::Server>(std::move(config), std::move(options));
  thread_ = std::thread([this] { server_->run(); });
}

InProcessDaemon::~InProcessDaemon() { stop(); }

void InProcessDaemon::stop() {
  if (!thread_.joinable()) return;
  server_->request_stop();
  thread_.join();
}

std::unique_ptr<client::Client> bench_client(const std::string& endpoint,
                                             const std::string& client_id) {
  client::ClientOptions o;
  o.endpoint = endpoint;
  o.client_id = client_id;
  o.timeout = std::chrono::seconds(120);
  return std::make_unique<client::Client>(std::move(o));
}

v1::Reply call_ok(client::Client& client, const v1::Request& request, const std::string& what) {
  v1::Reply reply = client.call(request);
  if (reply.status().code() != v1::OK) {
    throw std::runtime_error(what + ": " + v1::StatusCode_Name(reply.status().code()) + ": " +
                             reply.status().message());
  }
  return reply;
}

std::string acquire(client::Client& client, const std::string& device) {
  v1::Request r;
  r.mutable_acquire()->set_device(device);
  r.mutable_acquire()->set_ttl_ms(daemon::DaemonConfig{}.lease_max_ttl_ms);
  return call_ok(client, r, "Acquire " + device).acquire().lease_token();
}

// PNN_PNND, else the pnnd installed beside this program (cmake --install puts both in bin/),
// else the build tree's.
std::string pnnd_path() {
  if (const char* env = std::getenv("PNN_PNND"); env && *env) return env;
  std::error_code ec;
  const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path() / "pnnd";
  if (!ec && fs::exists(beside, ec)) return beside.string();
  return PNN_PNND_PATH;
}

v1::Request forward_request(const std::string& device, const std::string& token, const Matrix& x,
                            const Vector& theta) {
  v1::Request r;
  r.set_lease_token(token);
  auto* f = r.mutable_forward();
  f->set_device(device);
  daemon::to_tensor(x, f->mutable_x());
  daemon::to_vec(theta, f->mutable_theta());
  return r;
}

Matrix uniform(Index rows, Index cols, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(u(rng));  // wire floats
  return m;
}

double pipelined_forwards(client::Client& client, v1::Request& request, int n, int window,
                          const std::string& what) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int sent = 0, received = 0; received < n;) {
    while (sent < n && sent - received < window) {
      request.set_request_id(0);  // a fresh id each time: these are new batches, not retries
      (void)client.send(request);
      ++sent;
    }
    const auto reply = client.receive(std::chrono::seconds(120));
    if (!reply) throw std::runtime_error(what + ": no reply within 120 s");
    if (reply->status().code() != v1::OK) throw std::runtime_error(what + ": " + reply->status().message());
    ++received;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string source_file(const std::string& relative) {
  if (fs::exists(relative)) return relative;
  return (fs::path(PNN_SOURCE_DIR) / relative).string();
}

std::string config_file(const std::string& name) { return source_file("configs/" + name); }

std::string lab_config_in(const BenchDir& dir) {
  const std::string source = config_file("daemon/lab.yaml");
  YAML::Node lab = YAML::LoadFile(source);
  lab["rpc"]["bind"] = "tcp://127.0.0.1:*";
  lab["telemetry"]["bind"] = "tcp://127.0.0.1:*";
  if (lab["http"]) lab["http"]["bind"] = "127.0.0.1:0";
  lab["store"]["path"] = dir.file("store/pnnd.sqlite");
  lab["store"]["runs_dir"] = dir.file("runs");
  const std::string path = dir.file("lab.yaml");
  std::ofstream out(path);
  out << "# " << source << " with ephemeral ports and a temporary store\n"
      << YAML::Dump(lab) << "\n";
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

double quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

long long proc_status(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return -1;
}

}  // namespace pnn::bench::detail
