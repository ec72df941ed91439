#include "dashboard.hpp"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dashboard_assets.hpp"
#include "pnn/daemon/protocol.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon::detail {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kRingEvents = 4096;
constexpr std::size_t kRingBytes = 8u << 20;
constexpr std::uint32_t kMaxQueuedEvents = 10000;
constexpr auto kSnapshotReuse = std::chrono::milliseconds(250);
constexpr auto kSnapshotTimeout = std::chrono::seconds(3);
constexpr auto kPingInterval = std::chrono::seconds(15);
constexpr std::size_t kMaxRunsListed = 500;
constexpr std::uintmax_t kMaxPlotBytes = 16u << 20;

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

const char* run_state_name(RunState s) {
  switch (s) {
    case RunState::kRunning: return "RUNNING";
    case RunState::kSucceeded: return "SUCCEEDED";
    case RunState::kFailed: return "FAILED";
    case RunState::kCancelled: return "CANCELLED";
    case RunState::kAborted: return "ABORTED";
  }
  return "?";
}

json run_json(const RunRecord& r) {
  json j = {{"run_id", r.run_id},
            {"name", r.name},
            {"state", run_state_name(r.state)},
            {"started_ns", r.started_ns},
            {"finished_ns", r.finished_ns},
            {"epochs_done", r.epochs_done},
            {"device_serials", r.device_serials},
            {"owner", r.owner},
            {"message", r.message},
            {"checkpoint_path", r.checkpoint_path},
            {"summary", nullptr}};
  if (!r.summary_json.empty()) {
    j["summary"] = json::parse(r.summary_json, nullptr, /*allow_exceptions=*/false);
    if (j["summary"].is_discarded()) j["summary"] = r.summary_json;
  }
  return j;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(const std::string& in, std::string& out, bool plus_is_space) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return true;
}

void set_common_headers(HttpResponse& res, const std::string& type) {
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
          "frame-ancestors 'none'; form-action 'none'");
}

HttpResponse text_response(http::status status, unsigned version, const std::string& text) {
  HttpResponse res{status, version};
  set_common_headers(res, "text/plain; charset=utf-8");
  res.body() = text;
  return res;
}

HttpResponse body_response(unsigned version, const std::string& type, std::string body) {
  HttpResponse res{http::status::ok, version};
  set_common_headers(res, type);
  res.body() = std::move(body);
  return res;
}

std::string header(const HttpRequest& req, http::field f) {
  const auto it = req.find(f);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string header(const HttpRequest& req, const char* name) {
  const auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string cookie_value(const std::string& cookies, const std::string& name) {
  std::size_t pos = 0;
  while (pos < cookies.size()) {
    const auto end = std::min(cookies.find(';', pos), cookies.size());
    std::string item = cookies.substr(pos, end - pos);
    const auto first = item.find_first_not_of(' ');
    item = first == std::string::npos ? "" : item.substr(first);
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

// A Host header that names this machine: what a page served from loopback is addressed with.
// Anything else is a DNS-rebinding page on another site trying to read the dashboard.
bool loopback_host(const std::string& host) {
  std::string name = host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(1, name.find(']') == std::string::npos ? 0 : name.find(']') - 1);
    return name == "::1";
  }
  name = name.substr(0, name.rfind(':'));
  return name == "localhost" || is_loopback_host_port(name + ":0");
}

}  // namespace

bool decode_url_path(const std::string& raw, std::string& out) {
  if (raw.empty() || raw.front() != '/') return false;
  if (!percent_decode(raw, out, false)) return false;
  if (out.find('\0') != std::string::npos || out.find('\\') != std::string::npos) return false;
  std::size_t pos = 0;
  while (pos <= out.size()) {
    const auto end = std::min(out.find('/', pos), out.size());
    const std::string segment = out.substr(pos, end - pos);
    if (segment == ".." || segment == ".") return false;
    pos = end + 1;
  }
  return true;
}

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < query.size()) {
    const auto end = std::min(query.find('&', pos), query.size());
    const std::string item = query.substr(pos, end - pos);
    const auto eq = item.find('=');
    std::string key, value;
    if (percent_decode(item.substr(0, eq), key, true) &&
        percent_decode(eq == std::string::npos ? "" : item.substr(eq + 1), value, true) && !key.empty()) {
      out[key] = value;
    }
    pos = end + 1;
  }
  return out;
}

Dashboard::Dashboard(DashboardOptions options) : options_(std::move(options)) {
  HttpLimits limits;
  limits.max_connections = options_.http.max_connections;
  limits.max_header_bytes = options_.http.max_header_bytes;
  limits.idle_timeout_ms = options_.http.idle_timeout_ms;
  limits.write_timeout_ms = options_.http.write_timeout_ms;
  server_ = std::make_unique<HttpServer>(
      options_.http.bind, limits,
      [this](const HttpRequest& req, const std::shared_ptr<HttpConnection>& conn) { handle(req, conn); });
  ping_timer_ = std::make_unique<asio::steady_timer>(server_->io());
  snapshot_timeout_ = std::make_unique<asio::steady_timer>(server_->io());
}

Dashboard::~Dashboard() { stop(); }

void Dashboard::start() {
  ping_streams();
  server_->start();
}

void Dashboard::stop() {
  if (!alive_->exchange(false)) return;
  asio::post(server_->io(), [this] {
    ping_timer_->cancel();
    snapshot_timeout_->cancel();
    for (auto& s : streams_) s->close();
    streams_.clear();
    for (auto& w : snapshot_waiters_) w(nullptr);
    snapshot_waiters_.clear();
  });
  server_->stop();
}

void Dashboard::on_event(const std::string& topic, const std::string& serialized_event) {
  if (!alive_->load()) return;
  if (queued_events_.fetch_add(1) >= kMaxQueuedEvents) {
    --queued_events_;
    return;  // the dashboard is behind: browsers see the gap in sequence numbers and refetch
  }
  asio::post(server_->io(), [this, topic, serialized_event] {
    --queued_events_;
    take_event(topic, serialized_event);
  });
}

void Dashboard::take_event(const std::string& topic, const std::string& serialized) {
  v1::Event event;
  if (!event.ParseFromString(serialized)) return;
  instance_id_ = event.instance_id();
  std::string type, data;
  switch (event.body_case()) {
    case v1::Event::kDeviceState:
      type = "device";
      data = to_json(event.device_state());
      break;
    case v1::Event::kJob: {
      // Only the metrics this stream has not carried yet: a browser appends them from index
      // metrics_from (a job's event otherwise repeats its whole history every time).
      type = "job";
      v1::JobInfo job = event.job();
      int& sent = job_metrics_sent_[job.job_id()];
      const int total = job.metrics_size();
      const int from = total >= sent ? sent : 0;
      if (from > 0) job.mutable_metrics()->DeleteSubrange(0, from);
      sent = total;
      data = "{\"metrics_from\":" + std::to_string(from) + ",\"job\":" + to_json(job) + "}";
      break;
    }
    case v1::Event::kLog:
      type = "log";
      data = to_json(event.log());
      break;
    case v1::Event::kHeartbeat:
      type = "hb";
      data = to_json(event.heartbeat());
      break;
    default:
      return;
  }
  (void)topic;
  StreamEvent e;
  e.seq = event.seq();
  e.text = "id: " + instance_id_ + "/" + std::to_string(e.seq) + "\nevent: " + type + "\ndata: " + data + "\n\n";
  for (auto& s : streams_) s->write(e.text);
  std::erase_if(streams_, [](const std::shared_ptr<HttpConnection>& s) { return !s->is_open(); });
  ring_bytes_ += e.text.size();
  ring_.push_back(std::move(e));
  while (ring_.size() > kRingEvents || ring_bytes_ > kRingBytes) {
    ring_bytes_ -= ring_.front().text.size();
    ring_.pop_front();
  }
}

void Dashboard::ping_streams() {
  for (auto& s : streams_) s->write(": ping\n\n");
  std::erase_if(streams_, [](const std::shared_ptr<HttpConnection>& s) { return !s->is_open(); });
  ping_timer_->expires_after(kPingInterval);
  ping_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) ping_streams();
  });
}

bool Dashboard::authorized(const HttpRequest& req, const std::map<std::string, std::string>& query) const {
  const std::string& token = options_.http.token;
  if (token.empty()) return loopback_host(header(req, http::field::host));
  if (const auto it = query.find("token"); it != query.end() && constant_time_equal(it->second, token)) return true;
  if (constant_time_equal(cookie_value(header(req, http::field::cookie), "pnn_token"), token)) return true;
  const std::string auth = header(req, http::field::authorization);
  return auth.rfind("Bearer ", 0) == 0 && constant_time_equal(auth.substr(7), token);
}

void Dashboard::handle(const HttpRequest& req, const std::shared_ptr<HttpConnection>& conn) {
  const unsigned version = req.version();
  const std::string target(req.target());
  const auto qmark = target.find('?');
  std::string path;
  if (!decode_url_path(target.substr(0, qmark), path)) {
    return conn->respond(text_response(http::status::bad_request, version,
                                       "bad request path '" + target.substr(0, 200) +
                                           "' (no '..', '.', backslash or malformed %-escapes)\n"));
  }
  const auto query = parse_query(qmark == std::string::npos ? "" : target.substr(qmark + 1));
  if (!authorized(req, query)) {
    if (options_.http.token.empty()) {
      return conn->respond(text_response(http::status::forbidden, version,
                                         "this dashboard serves only pages addressed to this machine "
                                         "(Host: localhost or a loopback address); got Host '" +
                                             header(req, http::field::host).substr(0, 200) + "'\n"));
    }
    auto res = text_response(http::status::unauthorized, version,
                             "this dashboard needs its token: open " + path +
                                 "?token=TOKEN once (the token is http.token in the daemon config; "
                                 "the browser then keeps it as a cookie), or send "
                                 "'Authorization: Bearer TOKEN'\n");
    res.set(http::field::www_authenticate, "Bearer realm=\"pnnd\"");
    return conn->respond(std::move(res));
  }
  if (query.count("token") && !options_.http.token.empty() && path.rfind("/api/", 0) != 0) {
    // First visit with ?token=: keep it as a cookie and drop it from the address bar.
    HttpResponse res{http::status::see_other, version};
    set_common_headers(res, "text/plain; charset=utf-8");
    res.set(http::field::location, path);
    res.set(http::field::set_cookie, "pnn_token=" + options_.http.token +
                                         "; Path=/; HttpOnly; SameSite=Strict");
    return conn->respond(std::move(res));
  }
  if (path == "/" || path == "/index.html") path = "/static/index.html";
  if (path.rfind("/static/", 0) == 0) {
    const DashboardAsset* asset = find_dashboard_asset(path.substr(8));
    if (!asset) return conn->respond(text_response(http::status::not_found, version, "no such file\n"));
    auto res = body_response(version, std::string(asset->content_type), std::string(asset->body));
    res.set(http::field::cache_control, "no-cache");
    return conn->respond(std::move(res));
  }
  if (path == "/api/snapshot") return serve_snapshot(conn, version);
  if (path == "/api/events") return serve_events(req, conn, query);
  if (path == "/api/runs") return serve_runs(conn, version, query);
  if (path.rfind("/api/runs/", 0) == 0) {
    const std::string rest = path.substr(10);
    const auto slash = rest.find('/');
    return serve_run(conn, version, rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash + 1));
  }
  if (path == "/favicon.ico") {
    HttpResponse res{http::status::no_content, version};
    set_common_headers(res, "image/x-icon");
    return conn->respond(std::move(res));
  }
  if (path == "/healthz") return conn->respond(text_response(http::status::ok, version, "ok\n"));
  conn->respond(text_response(http::status::not_found, version,
                              "no page '" + path.substr(0, 200) +
                                  "' (pages: /, API: /api/snapshot, /api/events, /api/runs, /api/runs/ID)\n"));
}

void Dashboard::serve_snapshot(const std::shared_ptr<HttpConnection>& conn, unsigned version) {
  auto answer = [conn, version](const std::string* bytes) {
    if (!bytes) {
      return conn->respond(text_response(http::status::service_unavailable, version,
                                         "pnnd did not answer the dashboard within 3 s (stopping or "
                                         "very busy); the page retries\n"));
    }
    v1::SnapshotReply snapshot;
    snapshot.ParseFromString(*bytes);
    conn->respond(body_response(version, "application/json", to_json(snapshot)));
  };
  if (!snapshot_.empty() && std::chrono::steady_clock::now() - snapshot_at_ < kSnapshotReuse) {
    return answer(&snapshot_);
  }
  snapshot_waiters_.push_back(answer);
  if (snapshot_in_flight_) return;
  snapshot_in_flight_ = true;
  auto finish = [this](const std::string* bytes) {
    snapshot_in_flight_ = false;
    snapshot_timeout_->cancel();
    if (bytes) {
      snapshot_ = *bytes;
      snapshot_at_ = std::chrono::steady_clock::now();
    }
    auto waiters = std::move(snapshot_waiters_);
    snapshot_waiters_.clear();
    for (auto& w : waiters) w(bytes ? &snapshot_ : nullptr);
  };
  snapshot_timeout_->expires_after(kSnapshotTimeout);
  snapshot_timeout_->async_wait([this, finish](const boost::system::error_code& ec) {
    if (!ec && snapshot_in_flight_) finish(nullptr);
  });
  // Runs on the event loop; the bytes come back to this thread.
  options_.fetch_snapshot([this, alive = alive_, finish](std::string bytes) {
    if (!alive->load()) return;
    asio::post(server_->io(), [this, finish, bytes = std::move(bytes)] {
      if (snapshot_in_flight_) finish(&bytes);
    });
  });
}

void Dashboard::serve_events(const HttpRequest& req, const std::shared_ptr<HttpConnection>& conn,
                             const std::map<std::string, std::string>& query) {
  // Resume point: Last-Event-ID (EventSource sends it when it reconnects) or ?since=INSTANCE/SEQ.
  std::string last = header(req, "Last-Event-ID");
  if (const auto it = query.find("since"); last.empty() && it != query.end()) last = it->second;
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
      "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
      "retry: 2000\n\n";
  const std::uint64_t newest = ring_.empty() ? 0 : ring_.back().seq;
  head += "event: hello\ndata: {\"instance_id\":\"" + instance_id_ + "\",\"seq\":" + std::to_string(newest) + "}\n\n";
  bool resumed = false;
  if (!last.empty()) {
    const auto slash = last.rfind('/');
    const std::string instance = slash == std::string::npos ? "" : last.substr(0, slash);
    std::uint64_t seq = 0;
    try {
      seq = std::stoull(slash == std::string::npos ? last : last.substr(slash + 1));
    } catch (const std::exception&) {
      seq = 0;
    }
    const std::uint64_t oldest = ring_.empty() ? newest + 1 : ring_.front().seq;
    if (instance == instance_id_ && seq + 1 >= oldest && seq <= newest) {
      for (const auto& e : ring_) {
        if (e.seq > seq) head += e.text;
      }
      resumed = true;
    }
  }
  // Nothing to resume from (a first visit, another daemon instance, or events too old to
  // replay): the page fetches /api/snapshot and continues with the events that follow.
  if (!resumed && !last.empty()) head += "event: reset\ndata: {}\n\n";
  conn->begin_stream(std::move(head));
  streams_.push_back(conn);
}

void Dashboard::serve_runs(const std::shared_ptr<HttpConnection>& conn, unsigned version,
                           const std::map<std::string, std::string>& query) {
  std::size_t limit = 50;
  if (const auto it = query.find("limit"); it != query.end()) {
    try {
      limit = std::clamp<std::size_t>(std::stoul(it->second), 1, kMaxRunsListed);
    } catch (const std::exception&) {
      return conn->respond(text_response(http::status::bad_request, version,
                                         "limit must be a whole number (1.." + std::to_string(kMaxRunsListed) + ")\n"));
    }
  }
  json runs = json::array();
  try {
    for (const auto& r : options_.store->list_runs(limit)) runs.push_back(run_json(r));
  } catch (const std::exception& e) {
    return conn->respond(text_response(http::status::internal_server_error, version,
                                       std::string("run store: ") + e.what() + "\n"));
  }
  conn->respond(body_response(version, "application/json", json{{"runs", runs}}.dump()));
}

void Dashboard::serve_run(const std::shared_ptr<HttpConnection>& conn, unsigned version, const std::string& id_text,
                          const std::string& what) {
  std::uint64_t id = 0;
  const bool numeric = !id_text.empty() && id_text.size() < 20 &&
                       std::all_of(id_text.begin(), id_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) id = std::stoull(id_text);
  if (id == 0 || (what != "" && what != "plot.svg")) {
    return conn->respond(text_response(http::status::not_found, version,
                                       "no such run resource (use /api/runs/ID or /api/runs/ID/plot.svg)\n"));
  }
  std::optional<RunRecord> run;
  std::vector<MetricRecord> metrics;
  try {
    run = options_.store->get_run(id);
    if (run && what.empty()) metrics = options_.store->metrics(id);
  } catch (const std::exception& e) {
    return conn->respond(text_response(http::status::internal_server_error, version,
                                       std::string("run store: ") + e.what() + "\n"));
  }
  if (!run) {
    return conn->respond(text_response(http::status::not_found, version,
                                       "no run " + std::to_string(id) + " in the run store\n"));
  }
  if (what == "plot.svg") {
    // Only the plot the run's own summary names, and only from inside the runs directory.
    std::string plot;
    if (!run->summary_json.empty()) {
      const json summary = json::parse(run->summary_json, nullptr, false);
      if (summary.is_object() && summary.contains("plot") && summary["plot"].is_string()) plot = summary["plot"];
    }
    std::error_code ec;
    const fs::path file = fs::weakly_canonical(plot, ec);
    const fs::path root = fs::weakly_canonical(options_.runs_dir, ec);
    const auto rel = file.lexically_relative(root);
    const bool inside = !plot.empty() && !rel.empty() && *rel.begin() != "..";
    std::ifstream in;
    if (inside && fs::is_regular_file(file, ec) && fs::file_size(file, ec) <= kMaxPlotBytes) in.open(file);
    if (!in) {
      return conn->respond(text_response(http::status::not_found, version,
                                         "run " + id_text + " has no plot (yet)\n"));
    }
    std::stringstream body;
    body << in.rdbuf();
    auto res = body_response(version, "image/svg+xml", body.str());
    res.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    return conn->respond(std::move(res));
  }
  json j = run_json(*run);
  j["config_yaml"] = run->config_yaml;
  // Column arrays per phase: compact, and what a chart takes as is.
  json curves = json::object();
  for (const auto& m : metrics) {
    json& c = curves[m.phase];
    if (c.is_null()) {
      c = {{"epoch", json::array()}, {"train_loss", json::array()}, {"train_accuracy", json::array()},
           {"test_accuracy", json::array()}, {"seconds", json::array()}};
    }
    c["epoch"].push_back(m.epoch);
    c["train_loss"].push_back(m.train_loss);
    c["train_accuracy"].push_back(m.train_accuracy);
    if (m.test_accuracy < 0) {
      c["test_accuracy"].push_back(nullptr);
    } else {
      c["test_accuracy"].push_back(m.test_accuracy);
    }
    c["seconds"].push_back(m.seconds);
  }
  j["curves"] = std::move(curves);
  j["has_plot"] = run->summary_json.find("\"plot\"") != std::string::npos;
  conn->respond(body_response(version, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace)));
}

}  // namespace pnn::daemon::detail
