#pragma once
/// The mock fit of a spiking chip's twin (docs/setups/spiking-chip.md, "The mock fit"): the same
/// probe inputs run `repeats` times on the chip at one θ, and the twin's per-neuron corrections
/// are fitted to what the chip did, with no gradients:
///   1. hidden thresholds ϑ_j and input-channel gains g_c so that the twin's spike count of every
///      hidden neuron, averaged over the probe, matches the chip's (a multiplicative fixed point on
///      ϑ, a coordinate search on g; the chip's row and column gains and threshold spread are
///      what they absorb);
///   2. each output's readout gain a_o and offset b_o by least squares of the chip's sampled
///      traces against the twin's traces replayed from the chip's own hidden spikes (unsaturated
///      samples only).
/// What it leaves: per-neuron time constants, refractory times, leak and reset offsets, the
/// output synapses' row gains and the trial-to-trial noise (reported as the floor).
#include <memory>

#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/training/device_executor.hpp"

namespace pnn::training {

struct MockFitOptions {
  int repeats = 4;      ///< chip runs of the probe (≥ 2: the floor needs two)
  int iterations = 12;  ///< threshold / channel-gain rounds
};

/// Spike-count errors are mean |n_twin − n̄_chip| over probe samples and hidden neurons, in
/// spikes per neuron per input, n̄_chip the mean over the repeats.
struct MockFitReport {
  double spike_error_before = 0.0;
  double spike_error_after = 0.0;
  /// The chip against itself: mean |n_chip(one run) − n̄_chip(the others)| (what no twin removes)
  double spike_error_floor = 0.0;
  double chip_spikes_per_neuron = 0.0;  ///< n̄_chip averaged over samples and neurons
  /// Readout traces replayed from the chip's hidden spikes against the chip's, mean square
  double trace_mse_before = 0.0;
  double trace_mse_after = 0.0;
  /// Outputs (logits) of the free-running twin against the chip's mean, mean square
  double output_mse_before = 0.0;
  double output_mse_after = 0.0;
  int chip_runs = 0;
};

struct MockFitResult {
  std::shared_ptr<const digital_twin::SpikingLifModel> model;  ///< the fitted twin
  MockFitReport report;
};

/// Fits `twin` to `device` (a spiking setup: spec().spike_channels > 0) on `probe` (batch ×
/// features, checked as forward) at θ. Device errors are returned as they came (the twin is not
/// changed); kWrongState for a device without spike records; kShapeMismatch naming the fix when
/// the twin does not match the device's sizes; std::invalid_argument for repeats < 2.
drivers::Result<MockFitResult> mock_fit(drivers::PhysicalSystem& device,
                                        const digital_twin::SpikingLifModel& twin,
                                        const MatrixRef& probe, const VectorRef& theta,
                                        const MockFitOptions& options = {},
                                        const DeviceExecutor& executor = {});

/// Spikes per sample and hidden neuron (batch × H) of a record's hidden spikes (batch × T·H,
/// step-major).
Matrix spike_counts(const MatrixRef& hidden_spikes, Index steps, Index hidden);

}  // namespace pnn::training
