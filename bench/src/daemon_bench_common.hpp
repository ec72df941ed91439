#pragma once
// Shared pieces of the daemon benchmarks (daemon_rpc_bench.cpp, daemon_job_bench.cpp): temp
// directories, a daemon served in-process on a thread, the pnnd binary and its lab config for a
// subprocess, and latency statistics.
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pnn/client/client.hpp"
#include "pnn/common/tensor.hpp"
#include "pnn/daemon/config.hpp"
#include "pnn/daemon/server.hpp"

namespace pnn::bench::detail {

/// A fresh directory under the system temp dir (a real disk here, so the run store's fsyncs
/// cost what they cost in a lab), removed with its contents.
class BenchDir {
 public:
  explicit BenchDir(const std::string& tag);
  ~BenchDir();
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A daemon config on ephemeral loopback ports with its store and runs in `dir`; the other keys
/// keep pnnd's defaults (async forward records, default reply cache).
daemon::DaemonConfig loopback_config(const BenchDir& dir);

/// A daemon served by run() on its own thread of this process; stopped gracefully and joined
/// on destruction. Logs below "warning" are dropped (they would interleave with the JSON).
class InProcessDaemon {
 public:
  explicit InProcessDaemon(daemon::DaemonConfig config);
  ~InProcessDaemon();
  InProcessDaemon(const InProcessDaemon&) = delete;
  InProcessDaemon& operator=(const InProcessDaemon&) = delete;
  const std::string& rpc() const { return server_->rpc_endpoint(); }
  const std::string& http() const { return server_->http_url(); }
  /// Graceful stop (jobs stopped, devices safe, queued forward records written), then join.
  /// Idempotent.
  void stop();

 private:
  std::unique_ptr<daemon::Server> server_;
  std::thread thread_;
};

/// A client of `endpoint` as `client_id`, with a generous per-call timeout.
std::unique_ptr<client::Client> bench_client(const std::string& endpoint,
                                             const std::string& client_id);

/// Sends `request` and returns the reply; throws std::runtime_error naming `what` and the
/// status unless the reply is OK.
pnn::v1::Reply call_ok(client::Client& client, const pnn::v1::Request& request,
                          const std::string& what);

/// Acquires `device` with the longest lease the daemon grants; returns the token.
std::string acquire(client::Client& client, const std::string& device);

/// A Forward request of x (float32 on the wire) and θ with the lease `token`.
pnn::v1::Request forward_request(const std::string& device, const std::string& token, const Matrix& x,
                                 const Vector& theta);
/// rows × cols uniform in [lo, hi), each value a float32 (what the wire carries).
Matrix uniform(Index rows, Index cols, double lo, double hi, std::uint64_t seed);

/// Sends `n` copies of the Forward `request` (each a fresh request id) with up to `window` in
/// flight and waits for every reply; returns the seconds taken. Throws naming `what` on an error
/// reply or none within 120 s.
double pipelined_forwards(client::Client& client, pnn::v1::Request& request, int n, int window,
                          const std::string& what);

/// The pnnd binary: $PNN_PNND if set, else the one this build made.
std::string pnnd_path();
/// A file of the source tree: `relative` from the working directory if it is there (a run from
/// the repository root), else under the source directory the benchmarks were built from.
std::string source_file(const std::string& relative);
/// configs/<name> of the source tree (source_file("configs/" + name)).
std::string config_file(const std::string& name);
/// configs/daemon/lab.yaml rewritten to ephemeral loopback ports and a store in `dir`; returns the
/// path of the written file.
std::string lab_config_in(const BenchDir& dir);

/// The q-quantile (0..1) of `values` (sorted in place), by the nearest-rank method.
double quantile(std::vector<double>& values, double q);

/// A field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads); -1 if absent.
long long proc_status(int pid, const std::string& key);

}  // namespace pnn::bench::detail
