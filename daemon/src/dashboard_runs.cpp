// The dashboard's run-store pages: /api/runs (newest first) and /api/runs/ID (a run with its
// curves as columns per phase, its config and summary) and /api/runs/ID/plot.svg.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dashboard.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxRunsListed = 500;
constexpr std::uintmax_t kMaxPlotBytes = 16u << 20;

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

}  // namespace

void Dashboard::serve_runs(const std::shared_ptr<HttpConnection>& conn, unsigned version,
                           const std::map<std::string, std::string>& query) {
  std::size_t limit = 50;
  if (const auto it = query.find("limit"); it != query.end()) {
    try {
      limit = std::clamp<std::size_t>(std::stoul(it->second), 1, kMaxRunsListed);
    } catch (const std::exception&) {
      return conn->respond(text_reply(http::status::bad_request, version,
                                         "limit must be a whole number (1.." + std::to_string(kMaxRunsListed) + ")\n"));
    }
  }
  json runs = json::array();
  try {
    for (const auto& r : options_.store->list_runs(limit)) runs.push_back(run_json(r));
  } catch (const std::exception& e) {
    return conn->respond(text_reply(http::status::internal_server_error, version,
                                       std::string("run store: ") + e.what() + "\n"));
  }
  conn->respond(body_reply(version, "application/json", json{{"runs", runs}}.dump()));
}

void Dashboard::serve_run(const std::shared_ptr<HttpConnection>& conn, unsigned version, const std::string& id_text,
                          const std::string& what) {
  std::uint64_t id = 0;
  const bool numeric = !id_text.empty() && id_text.size() < 20 &&
                       std::all_of(id_text.begin(), id_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) id = std::stoull(id_text);
  if (id == 0 || (what != "" && what != "plot.svg")) {
    return conn->respond(text_reply(http::status::not_found, version,
                                       "no such run resource (use /api/runs/ID or /api/runs/ID/plot.svg)\n"));
  }
  std::optional<RunRecord> run;
  std::vector<MetricRecord> metrics;
  try {
    run = options_.store->get_run(id);
    if (run && what.empty()) metrics = options_.store->metrics(id);
  } catch (const std::exception& e) {
    return conn->respond(text_reply(http::status::internal_server_error, version,
                                       std::string("run store: ") + e.what() + "\n"));
  }
  if (!run) {
    return conn->respond(text_reply(http::status::not_found, version,
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
      return conn->respond(text_reply(http::status::not_found, version,
                                         "run " + id_text + " has no plot (yet)\n"));
    }
    std::stringstream body;
    body << in.rdbuf();
    auto res = body_reply(version, "image/svg+xml", body.str());
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
  conn->respond(body_reply(version, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace)));
}

}  // namespace pnn::daemon::detail
