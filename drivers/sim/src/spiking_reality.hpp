#pragma once
/// Reality simulator of the analog spiking chip (docs/setups/spiking-chip.md). Private to
/// drivers_sim.
///
/// The twin's network (digital_twin/spiking_lif.hpp) built from analog parts:
///   - fixed-pattern mismatch, persistent per chip (drawn from the serial's seed): per hidden
///     neuron threshold, leak potential, reset potential, membrane and synaptic time constants
///     and refractory time (whole steps, held at reset); per output neuron the time constants;
///     per synapse row (presynaptic) and column (postsynaptic) a gain; per output channel the
///     readout's offset and gain;
///   - per trial: Gaussian membrane noise every step and Gaussian spike-time jitter on the input
///     events (rounded to steps, kept in the window);
///   - the synapses apply whole weight levels (θ is sent as integers, |w| ≤ 63);
///   - each output membrane is sampled every step by a saturating 8-bit ADC (the datasheet's
///     SpikingReadout), after the readout's own offset and gain.
/// The simulation is vectorised over the batch (state matrices batch × neurons per step).
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "pnn/drivers/setups/spiking_chip.hpp"
#include "sim_setup.hpp"

namespace pnn::drivers::sim {

struct SpikingRealityConfig {
  digital_twin::SpikingLifConfig datasheet;
  setups::SpikingReadout readout;
  std::uint64_t seed = 0;
  /// Mismatch level: "large" (an uncalibrated analog chip), "small", or "none" (the twin's ideal
  /// network: no mismatch, noise or jitter unless asked; readout quantisation stays).
  std::string gap = "large";
  double noise = -1.0;    ///< membrane noise RMS per step (threshold = 1); < 0: the gap's default
  double jitter = -1.0;   ///< input spike-time jitter RMS in steps; < 0: the gap's default
};

class SpikingReality {
 public:
  explicit SpikingReality(const SpikingRealityConfig& config);
  /// forward: the datasheet's encoding of x, a run, Y = readout_scale · max_t of the decoded codes.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// One run of the batch's events (validated by the firmware) at θ (whole levels): the hidden
  /// spikes it produced, the output ADC codes and the outputs decoded from them as run() does.
  ChipRun spike_run(const std::vector<std::vector<digital_twin::InputEvent>>& events,
                    const VectorRef& theta);

 private:
  SpikingRealityConfig config_;
  // Per hidden neuron (H) and per output (O).
  Vector threshold_, leak_, reset_, alpha_h_, beta_h_, alpha_o_, beta_o_;
  Eigen::VectorXi refractory_;
  Vector row_in_, col_hidden_, row_hidden_, col_out_;  // synapse gains
  Vector ro_offset_, ro_gain_;
  double noise_ = 0.0, jitter_ = 0.0;
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim
