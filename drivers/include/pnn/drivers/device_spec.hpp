#pragma once
/// What a device is and what it may be asked to do: sizes, units and hard limits.
#include <string>
#include <vector>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::drivers {

/// A contiguous block of the parameter vector θ with one unit and one hard limit.
struct ParamBlock {
  std::string name;         ///< e.g. "coupling"
  Index count = 0;          ///< entries of θ in this block
  std::string unit;         ///< e.g. "V", "rad/s²"
  double hard_min = 0.0;    ///< a request below this is rejected, never applied
  double hard_max = 0.0;    ///< a request above this is rejected, never applied
  std::string description;  ///< what the parameter physically is
  /// The resolution of the instrument's setting (e.g. 1 weight level): a request must be a whole
  /// multiple of it, else it is refused (or rounded where the spec says `round_params`). 0:
  /// continuous.
  double step = 0.0;
};

struct DeviceSpec {
  std::string kind;      ///< setup kind, e.g. "mechanical-oscillators"
  std::string model;     ///< instrument model
  std::string serial;    ///< serial number: binds checkpoints and calibrations to a device
  std::string firmware;  ///< firmware version
  Index num_inputs = 0;
  Index num_outputs = 0;
  std::string input_unit;
  std::string output_unit;
  double input_min = 0.0;  ///< hard limit of every input entry (the actuator range)
  double input_max = 0.0;
  std::vector<ParamBlock> params;
  double output_noise_std = 0.0;  ///< typical read noise of one output, in output_unit
  Index max_batch = 0;            ///< largest batch one forward call accepts
  /// Energy-based setups (PhysicalSystem::settle): the node voltages a settle returns per sample,
  /// and how many of them are output nodes (the last ones; a clamped boundary holds them).
  /// 0: the setup has no settle call.
  Index settle_nodes = 0;
  Index settle_output_nodes = 0;
  /// Parameters with a `step`: round requests to the nearest multiple (the value applied is
  /// `PhysicalSystem::applied_params()`) instead of refusing them. Set by an address option.
  bool round_params = false;
  /// Spiking setups (PhysicalSystem::spike_run): input channels (event addresses), time steps
  /// of one run, hidden neurons whose spikes a run records, and the chip's event-rate limits
  /// (events per step over all channels, events per sample). 0 channels: no spike-run call.
  Index spike_channels = 0;
  Index spike_steps = 0;
  Index spike_hidden = 0;
  Index max_events_per_step = 0;
  Index max_events_per_sample = 0;

  Index num_params() const;
  /// The hard limits expanded to one entry per θ entry.
  Vector param_min() const;
  Vector param_max() const;
  /// Block name and index within the block of θ entry `i`, e.g. "coupling[17]".
  std::string param_name(Index i) const;
  /// A readable multi-line description (units and limits) for `pnnctl describe`.
  std::string describe() const;
};

}  // namespace pnn::drivers
