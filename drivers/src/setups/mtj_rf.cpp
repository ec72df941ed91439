#include "pnn/drivers/setups/mtj_rf.hpp"

namespace pnn::drivers::setups {

MtjRfDatasheet mtj_rf(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "chains", "offset_mhz", "serial"});
  MtjRfDatasheet out;
  digital_twin::MtjRfConfig& ds = out.twin_config;
  ds.num_inputs = int_in_range(address, "inputs", 64, 1, 256, "frequency channels");
  ds.num_outputs = int_in_range(address, "chains", 64, 1, 1024, "junction chains");
  // The tuning bias moves each resonance by at most ±half a channel spacing.
  const double tuning_mhz = 0.5 * ds.spacing_mhz;

  DeviceSpec& spec = out.spec;
  spec.kind = "mtj-rf";
  spec.serial = address.get("serial", "");
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
  out.twin = std::make_shared<digital_twin::MtjRfModel>(ds);
  return out;
}

}  // namespace pnn::drivers::setups
