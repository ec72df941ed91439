#pragma once
// The read-only web dashboard (docs/dashboard.md): pages and JSON served by an HttpServer on its
// own thread. What it shows comes from three places, none of which makes the daemon wait for it:
//  - a snapshot of devices and jobs, built on the event loop when asked (at most one in flight,
//    reused for 250 ms whatever the number of browsers);
//  - the telemetry events, handed over by Telemetry's tap (a copy of the serialized event, posted
//    to the dashboard's thread) and streamed to browsers as Server-Sent Events with their
//    sequence numbers, so a browser that reconnects resumes where it stopped;
//  - the run store (thread-safe) for run history.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http_server.hpp"
#include "pnn/daemon/config.hpp"

namespace pnn::daemon {
class RunStore;
}

namespace pnn::daemon::detail {

struct DashboardOptions {
  HttpConfig http;
  std::string runs_dir;  ///< plots are served only from inside it
  /// Asks the event loop for a serialized v1::SnapshotReply; `done` may be called on any thread.
  std::function<void(std::function<void(std::string)> done)> fetch_snapshot;
  RunStore* store = nullptr;
};

class Dashboard {
 public:
  /// Binds http.bind (throws std::runtime_error naming it and why).
  explicit Dashboard(DashboardOptions options);
  ~Dashboard();
  void start();
  void stop();
  /// From the event loop, for every telemetry event: never blocks (past a bound of events the
  /// dashboard has not taken yet, they are dropped and browsers see a sequence gap).
  void on_event(const std::string& topic, const std::string& serialized_event);
  const std::string& url() const { return server_->url(); }

 private:
  struct StreamEvent {
    std::uint64_t seq = 0;
    std::string text;  ///< the whole SSE frame: "id: N\nevent: T\ndata: {...}\n\n"
  };
  void handle(const HttpRequest& req, const std::shared_ptr<HttpConnection>& conn);
  void serve_snapshot(const std::shared_ptr<HttpConnection>& conn, unsigned version);
  void serve_events(const HttpRequest& req, const std::shared_ptr<HttpConnection>& conn,
                    const std::map<std::string, std::string>& query);
  void serve_runs(const std::shared_ptr<HttpConnection>& conn, unsigned version,
                  const std::map<std::string, std::string>& query);
  void serve_run(const std::shared_ptr<HttpConnection>& conn, unsigned version, const std::string& id_text,
                 const std::string& what);
  void take_event(const std::string& topic, const std::string& serialized);
  void ping_streams();
  bool authorized(const HttpRequest& req, const std::map<std::string, std::string>& query) const;

  DashboardOptions options_;
  std::unique_ptr<HttpServer> server_;
  // Dashboard thread only:
  std::string instance_id_;
  std::deque<StreamEvent> ring_;
  std::size_t ring_bytes_ = 0;
  std::map<std::uint64_t, int> job_metrics_sent_;  ///< job id -> metrics already streamed
  std::vector<std::shared_ptr<HttpConnection>> streams_;
  std::string snapshot_;  ///< cached serialized SnapshotReply
  std::chrono::steady_clock::time_point snapshot_at_{};
  bool snapshot_in_flight_ = false;
  std::vector<std::function<void(const std::string*)>> snapshot_waiters_;
  std::unique_ptr<boost::asio::steady_timer> ping_timer_;
  std::unique_ptr<boost::asio::steady_timer> snapshot_timeout_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::atomic<std::uint32_t> queued_events_{0};
};

/// Percent-decodes a URL path; false for malformed escapes, NUL, backslash or a ".." segment.
bool decode_url_path(const std::string& raw, std::string& out);
/// key=value pairs of a query string (percent-decoded; later keys win).
std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace pnn::daemon::detail
