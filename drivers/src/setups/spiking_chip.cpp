#include "pnn/drivers/setups/spiking_chip.hpp"

#include <stdexcept>

namespace pnn::drivers::setups {
namespace {

std::string choice(const DeviceAddress& address, const std::string& key,
                   const std::string& fallback, const std::string& a, const std::string& b) {
  const std::string v = address.get(key, fallback);
  if (v != a && v != b) {
    throw std::invalid_argument(address.text + ": " + key + " = '" + v + "' is not one of " + a +
                                ", " + b);
  }
  return v;
}

}  // namespace

SpikingChipDatasheet spiking_chip(const DeviceAddress& address) {
  address.allow_only({"seed", "serial", "features", "bias", "hidden", "outputs", "steps",
                      "encoding", "surrogate", "slope", "weights", "gap", "noise", "jitter"});
  SpikingChipDatasheet out;
  digital_twin::SpikingLifConfig& c = out.twin_config;
  c.num_features = int_in_range(address, "features", 4, 1, 32, "input features");
  c.num_bias = int_in_range(address, "bias", 1, 0, 8, "bias channels");
  if (c.num_channels() > 32) {
    throw std::invalid_argument(address.text + ": features + bias = " +
                                std::to_string(c.num_channels()) +
                                " input channels exceed the chip's 32 (5-bit event address)");
  }
  c.num_hidden = int_in_range(address, "hidden", 120, 1, 512, "hidden LIF neurons");
  c.num_outputs = int_in_range(address, "outputs", 3, 1, 32, "output neurons");
  c.num_steps = int_in_range(address, "steps", 40, 8, 255, "time steps");
  // The encoding window scales with the run: early at 5 %, late at 65 %, bias at 35 %.
  c.t_early = c.num_steps / 20;
  c.t_late = (c.num_steps * 13) / 20;
  c.bias_step = (c.num_steps * 7) / 20;
  c.encoding = choice(address, "encoding", "latency", "latency", "rate") == "latency"
                   ? digital_twin::SpikeEncoding::kLatency
                   : digital_twin::SpikeEncoding::kRate;
  c.max_rate_spikes = std::min<Index>(8, c.t_late - c.t_early + 1);
  c.surrogate = choice(address, "surrogate", "fast-sigmoid", "fast-sigmoid", "arctan") ==
                        "fast-sigmoid"
                    ? digital_twin::Surrogate::kFastSigmoid
                    : digital_twin::Surrogate::kArctan;
  c.surrogate_slope = double_in_range(address, "slope", c.surrogate_slope, 0.1, 1000.0);
  digital_twin::validate(c);
  DeviceSpec& spec = out.spec;
  spec.kind = "spiking-chip";
  spec.serial = address.get("serial", "");
  spec.num_inputs = c.num_features;
  spec.num_outputs = c.num_outputs;
  spec.input_unit = "1 (data feature, encoded into spike times by the driver)";
  spec.output_unit = "1 (logit: readout scale x peak output membrane, threshold = 1)";
  spec.input_min = 0.0;
  spec.input_max = 1.0;
  spec.output_noise_std = c.readout_scale * (out.readout.hi - out.readout.lo) / 255.0;
  spec.max_batch = 4096;
  spec.round_params = choice(address, "weights", "reject", "reject", "round") == "round";
  spec.spike_channels = c.num_channels();
  spec.spike_steps = c.num_steps;
  spec.spike_hidden = c.num_hidden;
  // The event bus carries one event per channel and step, so the encoder never exceeds it.
  spec.max_events_per_step = 32;
  spec.max_events_per_sample = 512;
  spec.params = {
      {"w_in", c.num_in_weights(), "level", -kMaxWeightLevel, kMaxWeightLevel,
       "signed 6-bit synapse from each input channel (features, then bias) to each hidden LIF "
       "neuron; row-major hidden x channels",
       1.0},
      {"w_out", c.num_outputs * c.num_hidden, "level", -kMaxWeightLevel, kMaxWeightLevel,
       "signed 6-bit synapse from each hidden neuron to each output integrator; row-major "
       "outputs x hidden",
       1.0},
  };
  out.twin = std::make_shared<digital_twin::SpikingLifModel>(c);
  return out;
}

}  // namespace pnn::drivers::setups
