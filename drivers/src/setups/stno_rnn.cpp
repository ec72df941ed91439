#include "pnn/drivers/setups/stno_rnn.hpp"

namespace pnn::drivers::setups {

StnoRnnDatasheet stno_rnn(const DeviceAddress& address) {
  address.allow_only({"seed", "neurons", "steps", "inputs", "period_ns", "spread", "serial"});
  StnoRnnDatasheet out;
  digital_twin::StnoConfig& ds = out.twin_config;
  ds.num_neurons = int_in_range(address, "neurons", 64, 1, 1024, "oscillators");
  ds.num_steps = int_in_range(address, "steps", 8, 1, 1024, "input periods");
  ds.inputs_per_step = int_in_range(address, "inputs", 8, 1, 1024, "inputs per period");
  ds.period_ns = double_in_range(address, "period_ns", ds.period_ns, 0.01, 10.0);
  const Index n = ds.num_neurons, m = ds.inputs_per_step;

  DeviceSpec& spec = out.spec;
  spec.kind = "stno-rnn";
  spec.serial = address.get("serial", "");
  spec.num_inputs = ds.num_steps * m;
  spec.num_outputs = n;
  spec.input_unit = "1 (input drive, fraction of full scale; step-major: period t, input j)";
  spec.output_unit = "1 (normalised oscillation power p at the end of the sequence)";
  spec.input_min = 0.0;
  spec.input_max = 1.0;
  spec.output_noise_std = 0.03;  // thermal fluctuation of p at ζ = 2 plus readout noise
  spec.max_batch = 4096;
  // Single contributions are limited so that the bias alone stays in the safe range [1, 4]·I_th;
  // the current sources' compliance clamps the summed drive to that range as well.
  spec.params = {
      {"bias", n, "uA", 10.0, 40.0, "bias current b_i of each oscillator"},
      {"input_weight", n * m, "uA", -20.0, 20.0,
       "input current W_ij per unit input drive, row-major oscillators x inputs"},
      {"recurrent", n * n, "uA", -10.0, 10.0,
       "recurrent current R_ik per unit power of oscillator k, row-major oscillators x "
       "oscillators"},
  };
  out.twin = std::make_shared<digital_twin::StnoModel>(ds);
  return out;
}

}  // namespace pnn::drivers::setups
