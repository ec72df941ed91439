// watch [TOPIC...]: prints the daemon's telemetry, and says when events were lost (a gap in
// seq) or the daemon restarted (a new instance id) or went silent.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "output.hpp"
#include "signals.hpp"
#include "verbs.hpp"

namespace pnnctl {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct WatchArgs {
  std::vector<std::string> topics;
  int count = 0;
  double duration_s = 0.0;
  double silence_s = 5.0;
};

std::string clock_text(std::int64_t wall_ns) {
  const std::time_t t = static_cast<std::time_t>(wall_ns / 1000000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>((wall_ns / 1000000) % 1000));
  return out;
}

std::string event_text(const v1::Event& e) {
  char buf[256];
  switch (e.body_case()) {
    case v1::Event::kHeartbeat:
      return "heartbeat (protocol " + std::to_string(e.heartbeat().protocol_major()) +
             ", devices digest " + e.heartbeat().devices_digest() + ")";
    case v1::Event::kDeviceState: {
      const auto& d = e.device_state();
      return d.name() + " " + state_name(d.state()) + " health " + health_name(d.health()) +
             " lease " + (d.lease_holder().empty() ? "-" : d.lease_holder()) + ", " +
             std::to_string(d.forward_calls()) + " forward calls";
    }
    case v1::Event::kJob: {
      const auto& j = e.job();
      std::string text = "job " + std::to_string(j.job_id()) + " (run " +
                         std::to_string(j.run_id()) + ", " + j.name() + ") " +
                         job_state_name(j.state());
      if (j.state() == v1::RUNNING && j.num_batches() > 0) {
        std::snprintf(buf, sizeof buf, " %s epoch %u/%u batch %u/%u loss %.4f", j.phase().c_str(),
                      j.epoch(), j.epochs_total(), j.batch(), j.num_batches(), j.running_loss());
        text += buf;
      } else if (j.metrics_size() > 0) {
        const auto& m = j.metrics(j.metrics_size() - 1);
        std::snprintf(buf, sizeof buf, " %s epoch %u: loss %.4f test acc %.4f", m.phase().c_str(),
                      m.epoch(), m.train_loss(), m.test_accuracy());
        text += buf;
      }
      if (!j.message().empty()) text += ": " + j.message();
      return text;
    }
    case v1::Event::kLog:
      return e.log().level() + ": " + e.log().text();
    case v1::Event::BODY_NOT_SET:
      break;
  }
  return "(empty event)";
}

void notice(bool as_json, const json& j, const std::string& text) {
  if (as_json) {
    print_json_line(j);
  } else {
    std::printf("!! %s\n", text.c_str());
    std::fflush(stdout);
  }
}

int watch(const RemoteOptions& options, const WatchArgs& a) {
  SignalWatcher signals;  // before any ZeroMQ thread exists
  Remote remote(options);
  std::string instance;
  std::string endpoint = options.telemetry;
  if (endpoint.empty()) {
    instance = remote.hello().instance_id();
    endpoint = remote.telemetry_endpoint();
  }
  // Everything is subscribed and filtered here: seq counts every topic, so only the whole
  // stream shows whether events were lost.
  pnn::client::Subscriber sub(endpoint, {}, remote.curve());
  std::fprintf(stderr, "pnnctl: watching %s%s%s (Ctrl-C stops)\n", endpoint.c_str(),
               instance.empty() ? "" : ", instance ", instance.c_str());
  auto wanted = [&](const std::string& topic) {
    if (a.topics.empty()) return true;
    for (const auto& t : a.topics) {
      if (topic.rfind(t, 0) == 0) return true;
    }
    return false;
  };
  std::uint64_t last_seq = 0;
  int shown = 0;
  const auto start = Clock::now();
  auto last_event = start;
  bool silent = false;
  while (signals.count() == 0) {
    if (a.count > 0 && shown >= a.count) return kExitOk;
    const auto now = Clock::now();
    if (a.duration_s > 0 && now - start > std::chrono::duration<double>(a.duration_s)) {
      if (a.count > 0) {
        std::fprintf(stderr, "pnnctl watch: %d of %d events in %.1f s\n", shown, a.count,
                     a.duration_s);
        return kExitFailed;
      }
      return kExitOk;
    }
    auto ev = sub.next(200ms);
    if (!ev) {
      const double quiet = std::chrono::duration<double>(Clock::now() - last_event).count();
      if (!silent && quiet > a.silence_s) {
        silent = true;
        notice(options.json, {{"notice", "silence"}, {"seconds", quiet}},
               "no telemetry for " + std::to_string(static_cast<int>(quiet)) + " s (" + kStartHint +
                   ")");
      }
      continue;
    }
    last_event = Clock::now();
    if (silent) {
      silent = false;
      notice(options.json, {{"notice", "resumed"}}, "telemetry resumed");
    }
    const v1::Event& e = ev->second;
    if (!instance.empty() && e.instance_id() != instance) {
      notice(options.json,
             {{"notice", "restart"}, {"old_instance", instance}, {"new_instance", e.instance_id()}},
             "pnnd restarted: instance " + instance + " -> " + e.instance_id() +
                 " (jobs of the old instance were stopped; their runs are resumable)");
      last_seq = 0;
    } else if (last_seq != 0 && e.seq() > last_seq + 1) {
      const std::uint64_t lost = e.seq() - last_seq - 1;
      notice(
          options.json,
          {{"notice", "gap"}, {"lost", lost}, {"from_seq", last_seq + 1}, {"to_seq", e.seq() - 1}},
          "lost " + std::to_string(lost) + " event(s): seq " + std::to_string(last_seq + 1) + ".." +
              std::to_string(e.seq() - 1));
    }
    instance = e.instance_id();
    last_seq = e.seq();
    if (!wanted(ev->first)) continue;
    ++shown;
    if (options.json) {
      print_json_line({{"topic", ev->first}, {"event", to_json(e)}});
    } else {
      std::printf("%s #%-6llu %-14s %s\n", clock_text(e.wall_ns()).c_str(),
                  static_cast<unsigned long long>(e.seq()), ev->first.c_str(),
                  event_text(e).c_str());
      std::fflush(stdout);
    }
  }
  return kExitOk;
}

}  // namespace

void add_watch_verb(CLI::App& app, RemoteOptions& remote, Action& action) {
  auto a = std::make_shared<WatchArgs>();
  auto* cmd = app.add_subcommand(
      "watch", "print telemetry (topics hb, state/<device>, job/<id>, log/<level>)");
  cmd->add_option("topic", a->topics,
                  "topic prefixes to show, e.g. job/ state/osc-a (default: all)");
  cmd->add_option("--count", a->count, "stop after this many events (0 = no limit)");
  cmd->add_option("--duration-s", a->duration_s, "stop after this many seconds (0 = no limit)");
  cmd->add_option("--silence-s", a->silence_s, "say so when no event came for this long")
      ->capture_default_str();
  cmd->callback([a, &remote, &action] { action = [a, &remote] { return watch(remote, *a); }; });
}

}  // namespace pnnctl
