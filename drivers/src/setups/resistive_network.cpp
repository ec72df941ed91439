#include "pnn/drivers/setups/resistive_network.hpp"

namespace pnn::drivers::setups {

ResistiveNetworkDatasheet resistive_network(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "hidden", "outputs", "mismatch", "threshold_spread",
                      "noise_mv", "settle_us", "serial"});
  ResistiveNetworkDatasheet out;
  digital_twin::ResistiveNetworkConfig& c = out.twin_config;
  c.num_inputs = int_in_range(address, "inputs", 64, 1, 1024, "input voltage sources");
  c.num_hidden = int_in_range(address, "hidden", 128, 1, 1024, "hidden nodes");
  c.num_outputs = int_in_range(address, "outputs", 10, 1, 100, "output node pairs");
  c.diode_threshold_volts = 0.05;
  c.readout_gain = 20.0;
  DeviceSpec& spec = out.spec;
  spec.kind = "resistive-network";
  spec.serial = address.get("serial", "");
  spec.num_inputs = c.num_inputs;
  spec.num_outputs = c.num_outputs;
  spec.input_unit = "V (input voltage source; its mirror -x is driven too)";
  spec.output_unit = "1 (logit: readout gain x voltage difference of an output node pair)";
  spec.input_min = 0.0;
  spec.input_max = 1.0;
  spec.output_noise_std = c.readout_gain * 1.4142 * 1e-4;  // 0.1 mV per node reading
  spec.max_batch = 4096;
  spec.settle_nodes = c.num_nodes();
  spec.settle_output_nodes = c.num_output_nodes();
  spec.params = {
      {"g_in", c.num_hidden * c.num_sources(), "mS", c.g_min_ms, c.g_max_ms,
       "conductance from each voltage source (x, -x, +V_b, -V_b) to each hidden node; "
       "row-major hidden x sources"},
      {"g_out", c.num_output_nodes() * c.num_hidden, "mS", c.g_min_ms, c.g_max_ms,
       "conductance from each hidden node to each output node (pairs m, outputs+m); "
       "row-major output nodes x hidden"},
  };
  out.twin = std::make_shared<digital_twin::ResistiveNetworkModel>(c);
  return out;
}

}  // namespace pnn::drivers::setups
