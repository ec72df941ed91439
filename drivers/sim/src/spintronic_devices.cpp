// Simulated spintronic instruments: the STNO recurrent network and the MTJ spin-diode RF synapse
// chains with STNO neurons (PHYSICS.md "Spintronic (a)" and "(b)"); declared in sim_devices.hpp.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "faults.hpp"
#include "mtj_rf_reality.hpp"
#include "pnn/digital_twin/mtj_rf.hpp"
#include "pnn/digital_twin/stno.hpp"
#include "sim_devices.hpp"
#include "stno_reality.hpp"

namespace pnn::drivers::sim {

SimSetup make_stno_rnn(const DeviceAddress& address) {
  address.allow_only({"seed", "neurons", "steps", "inputs", "period_ns", "spread", "serial"});
  const long long seed = address.get_int("seed", 1);
  digital_twin::StnoConfig ds;
  ds.num_neurons = int_in_range(address, "neurons", 64, 1, 1024, "oscillators");
  ds.num_steps = int_in_range(address, "steps", 8, 1, 1024, "input periods");
  ds.inputs_per_step = int_in_range(address, "inputs", 8, 1, 1024, "inputs per period");
  ds.period_ns = double_in_range(address, "period_ns", ds.period_ns, 0.01, 10.0);
  const double spread = double_in_range(address, "spread", 0.10, 0.0, 0.5);
  const Index n = ds.num_neurons, m = ds.inputs_per_step;

  DeviceSpec spec;
  spec.kind = "stno-rnn";
  spec.model =
      "SIM-STNO (simulated array of spin-torque nano-oscillators with programmable bias, "
      "input and recurrent current sources; I_th = 10 uA)";
  spec.serial = address.get("serial", "SIM-STNO-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
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
  StnoRealityConfig config{.datasheet = ds, .seed = serial_seed(spec.serial), .spread = spread};
  auto twin = std::make_shared<digital_twin::StnoModel>(config.datasheet);
  return {std::move(spec), std::move(twin), reality_factory<StnoReality>(config)};
}

SimSetup make_mtj_rf(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "chains", "offset_mhz", "serial"});
  const long long seed = address.get_int("seed", 1);
  digital_twin::MtjRfConfig ds;
  ds.num_inputs = int_in_range(address, "inputs", 64, 1, 256, "frequency channels");
  ds.num_outputs = int_in_range(address, "chains", 64, 1, 1024, "junction chains");
  const double offset_mhz = double_in_range(address, "offset_mhz", 8.0, 0.0, 25.0);
  // The tuning bias moves each resonance by at most ±half a channel spacing.
  const double tuning_mhz = 0.5 * ds.spacing_mhz;

  DeviceSpec spec;
  spec.kind = "mtj-rf";
  spec.model =
      "SIM-MTJ-RF (simulated spin-diode MTJ synapse chains on a 64-tone RF comb, "
      "50 MHz spacing, with STNO neurons)";
  spec.serial = address.get("serial", "SIM-MTJ-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = ds.num_inputs;
  spec.num_outputs = ds.num_outputs;
  spec.input_unit = "uW (RF power of each comb tone)";
  spec.output_unit = "1 (normalised steady-state power p0 of each STNO neuron)";
  spec.input_min = 0.0;
  spec.input_max = 1.0;  // spin-diode small-signal regime
  spec.output_noise_std = 0.005;
  spec.max_batch = 1 << 16;
  spec.params = {{"detuning", ds.num_inputs * ds.num_outputs, "MHz", -tuning_mhz, tuning_mhz,
                  "resonance f_r of each junction relative to its channel tone f_k, set by its "
                  "tuning bias; row-major chains x junctions"}};
  MtjRfRealityConfig config{
      .datasheet = ds, .seed = serial_seed(spec.serial), .offset_mhz = offset_mhz};
  auto twin = std::make_shared<digital_twin::MtjRfModel>(config.datasheet);
  return {std::move(spec), std::move(twin), reality_factory<MtjRfReality>(config)};
}

}  // namespace pnn::drivers::sim
