#include "pnn/training/job_summary.hpp"

#include <nlohmann/json.hpp>

namespace pnn::training {

std::string job_summary_json(const JobConfig& config, const JobResult& r) {
  using nlohmann::json;
  json j{{"name", r.name},          {"dataset", r.dataset},
         {"split", r.split},        {"seed", config.seed},
         {"devices", r.device_serials}, {"epochs", config.training.epochs},
         {"wall_s", r.wall_seconds}, {"threads", r.threads}, {"compute", r.compute},
         {"checkpoint", r.checkpoint_path}, {"plot", r.plot_path}};
  // The main phase is the rule's (PHYSICS.md: acc_<rule>_reality, and hardware_calls counts its
  // device calls); the baselines follow it.
  if (!r.phases.empty() && r.phases.front().phase != "in-silico" &&
      r.phases.front().phase != "digital") {
    const PhaseResult& main = r.phases.front();
    j["acc_" + main.phase + "_reality"] = main.acc_hardware;
    j["hardware_calls"] = main.hardware_calls;
  }
  if (const auto* p = r.phase("in-silico")) {
    j["acc_insilico_reality"] = p->acc_hardware;
    j["acc_twin"] = p->acc_twin;
  }
  if (const auto* p = r.phase("digital")) j["acc_digital"] = p->acc_twin;
  json cal = json::array();
  for (const auto& c : r.calibration) {
    json entry = {{"layer", c.layer}, {"serial", c.serial}, {"mse_before", c.mse_before},
                  {"mse_after", c.mse_after}};
    if (c.mock_fit) {
      const MockFitReport& m = *c.mock_fit;
      entry["mock_fit"] = {{"spike_error_before", m.spike_error_before},
                           {"spike_error_after", m.spike_error_after},
                           {"spike_error_floor", m.spike_error_floor},
                           {"chip_spikes_per_neuron", m.chip_spikes_per_neuron},
                           {"trace_mse_before", m.trace_mse_before},
                           {"trace_mse_after", m.trace_mse_after},
                           {"chip_runs", m.chip_runs}};
    }
    cal.push_back(std::move(entry));
  }
  j["calibration"] = cal;
  if (!r.twins.empty()) {
    json twins = json::object();
    for (const auto& [device, what] : r.twins) {
      twins[device] = {{"source", what.first}, {"data_hash", what.second}};
    }
    j["twins"] = twins;
  }
  if (!r.refits.empty()) j["refits"] = r.refits;
  json phases = json::array();
  for (const auto& p : r.phases) {
    json hist = json::array();
    for (const auto& e : p.history) {
      hist.push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss},
                      {"train_accuracy", e.train_accuracy}, {"test_accuracy", e.test_accuracy},
                      {"seconds", e.seconds}, {"hardware_calls", e.hardware_calls}});
    }
    phases.push_back({{"phase", p.phase}, {"acc_hardware", p.acc_hardware},
                      {"acc_twin", p.acc_twin}, {"seconds", p.seconds},
                   {"hardware_calls", p.hardware_calls}, {"history", hist}});
  }
  j["phases"] = phases;
  return j.dump();
}

}  // namespace pnn::training
