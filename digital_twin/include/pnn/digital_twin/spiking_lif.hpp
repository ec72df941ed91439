#pragma once
/// The ideal leaky integrate-and-fire network of the spiking chip (docs/setups/spiking-chip.md):
/// input spike trains → one layer of LIF neurons with current-based synapses → leaky-integrator
/// (non-spiking) outputs read as the maximum of their membrane over time (the hxtorch Yin-Yang
/// set-up). Discrete time, step dt; all voltages normalised (leak 0, threshold 1, reset 0).
///
/// Per step t = 0 … T−1 (state before step 0 is zero), hidden j, input channel c, output o:
///   I_j[t] = α I_j[t−1] + s_in Σ_c W_in[j,c] S_c[t]          α = exp(−dt/τ_syn)
///   V_j[t] = β V_j[t−1] (1 − z_j[t−1]) + (1 − β) I_j[t]      β = exp(−dt/τ_mem)
///   z_j[t] = H(V_j[t] − ϑ)                                    (reset to 0 the step after)
///   J_o[t] = α J_o[t−1] + s_out Σ_j W_out[o,j] z_j[t]
///   U_o[t] = β U_o[t−1] + (1 − β) J_o[t]
///   y_o    = r · max_t U_o[t]                                 (logit per unit membrane r)
/// θ: W_in row-major (hidden × channels), then W_out row-major (outputs × hidden), in weight
/// levels (the chip's signed 6-bit synapses: integers in [−63, 63]).
///
/// Gradients: BPTT of this recursion (the reset path included) with H′ replaced by the surrogate
/// σ′ (fast sigmoid or arctan, slope k). With `smooth`, the forward uses the surrogate's own
/// primitive σ in place of H, so vjp is then the exact gradient of a smooth function (the
/// finite-difference check). Spike times come from the data through a fixed encoding, so ∂y/∂x = 0.
#include <cstdint>
#include <string>
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

enum class Surrogate : std::uint8_t { kFastSigmoid = 0, kArctan = 1 };
enum class SpikeEncoding : std::uint8_t { kLatency = 0, kRate = 1 };
/// "fast-sigmoid", "arctan"; "latency", "rate".
const char* to_string(Surrogate s);
const char* to_string(SpikeEncoding e);

struct SpikingLifConfig {
  Index num_features = 4;  ///< data features, each in [0, 1]
  Index num_bias = 1;      ///< bias channels: one spike each at bias_step
  Index num_hidden = 120;
  Index num_outputs = 3;
  Index num_steps = 40;  ///< time window T (steps of dt)
  double dt_us = 1.0;    ///< chip time per step (accelerated: 1 µs here is 1 ms biological)
  double tau_mem_us = 6.0;
  double tau_syn_us = 6.0;
  double threshold = 1.0;        ///< ϑ
  /// s_in: synaptic current of one level of W_in per spike. One spike on a full-scale synapse
  /// (63 levels) lifts the membrane to about the threshold (the current-to-membrane kernel
  /// peaks at ≈ 0.34 for τ_mem = τ_syn = 6 steps).
  double weight_scale_in = 0.05;
  double weight_scale_out = 0.01;  ///< s_out
  double readout_scale = 4.0;      ///< r
  SpikeEncoding encoding = SpikeEncoding::kLatency;
  Index t_early = 2;     ///< latency: feature 0 fires at t_early, feature 1 at t_late
  Index t_late = 26;
  Index bias_step = 14;  ///< the bias channels' spike
  Index max_rate_spikes = 8;  ///< rate: feature 1 fires this often, evenly over [t_early, t_late]
  Surrogate surrogate = Surrogate::kFastSigmoid;
  double surrogate_slope = 10.0;  ///< k (per unit membrane)
  bool smooth = false;            ///< forward with σ in place of H (tests)
  /// Per-neuron corrections that a mock fit of a chip sets (training/spiking_fit.hpp); empty
  /// means nominal. channel_gain (channels): each input channel's events are weighted by it
  /// (a presynaptic synapse-row gain); hidden_threshold (hidden): ϑ_j in place of `threshold`;
  /// output_gain, output_offset (outputs): the readout trace is a_o·U_o + b_o, so
  /// y_o = r·max_t (a_o U_o[t] + b_o).
  Vector channel_gain;
  Vector hidden_threshold;
  Vector output_gain;
  Vector output_offset;

  Index num_channels() const { return num_features + num_bias; }
  Index num_in_weights() const { return num_hidden * num_channels(); }
  Index num_params() const { return num_in_weights() + num_outputs * num_hidden; }
  double alpha() const;
  double beta() const;
};

/// Throws std::invalid_argument naming the field and its range: sizes ≥ 1 (channels ≤ 32, the
/// 5-bit event address), 2 ≤ steps ≤ 255, 0 ≤ t_early < t_late < steps, bias_step < steps,
/// positive finite time constants, threshold, scales and slope, max_rate_spikes ≥ 1; the
/// per-neuron vectors empty or of their size, gains and thresholds positive and finite, offsets
/// finite.
void validate(const SpikingLifConfig& config);

/// One input spike: channel (address) and time step.
struct InputEvent {
  std::uint16_t channel = 0;
  std::uint16_t step = 0;
  bool operator==(const InputEvent&) const = default;
};

/// The events of one sample (features clipped to [0, 1]), sorted by (step, channel), at most one
/// per channel and step. Latency: feature x fires once at round(t_early + x·(t_late − t_early)).
/// Rate: round(x·max_rate_spikes) spikes evenly spread over [t_early, t_late]. Bias channels fire
/// once at bias_step.
std::vector<InputEvent> encode_events(const SpikingLifConfig& config, const VectorRef& features);

/// What one run of the network did: per sample, hidden spikes (T·H, step-major: entry t·H + j)
/// and output membranes (T·O, step-major), and the outputs y. batch rows each.
struct SpikeRecord {
  Matrix hidden_spikes;   ///< 0/1 (the twin's smooth mode: σ values)
  Matrix output_traces;   ///< the readout traces a_o·U_o[t] + b_o (the chip: as sampled)
  Matrix outputs;         ///< y (batch × O): r·max_t U for the twin, the readings for a chip
};

/// y = r · max_t trace from output traces (batch × T·O) → batch × O.
Matrix max_over_time(const SpikingLifConfig& config, const MatrixRef& output_traces);

class SpikingLifModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument (validate).
  explicit SpikingLifModel(SpikingLifConfig config);

  std::string name() const override { return "spiking-lif"; }
  Index num_inputs() const override { return config_.num_features; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_params(); }
  /// W_in ~ N(8w, 12²w) levels with w = 5 / channels (the 5-channel chip: N(8, 12²)), W_out ~
  /// N(0, 12²), clipped to ±63; deterministic in `seed`.
  Vector initial_params(std::uint64_t seed) const override;

  const SpikingLifConfig& config() const { return config_; }

  /// Physical parameters φ = (ln s_in, ln s_out, ln r): the chip's global synapse scales and
  /// readout scale (logarithms, so every real φ is a valid chip), what calibration (the mock
  /// fit's global part) fits to measurements. with_physical_params throws
  /// std::invalid_argument unless φ has 3 finite entries.
  Index num_physical_params() const override { return 3; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  /// The twin's own spike record of batch x at θ (shapes checked as forward).
  SpikeRecord record(const MatrixRef& x, const VectorRef& theta) const;

  /// The spike-train-level rule (the HM2-BP / ST-RSBP idea; docs/setups/spiking-chip.md): an
  /// alternative backward at the measured `record` that works with spike counts and
  /// spike-train-level post-synaptic potentials (S-PSPs) in place of BPTT through time:
  ///   output synapses: the exact gradient at the record (as vjp_at_record: given the spikes, the
  ///     readout is linear in W_out);
  ///   hidden neuron j, count n_j: ∂L/∂n_j = Σ_o ȳ_o r a_o s_out W_out[o,j] ē_oj, with ē_oj the
  ///     mean PSP of one of j's spikes at output o's peak (t*_o, from the measured trace);
  ///   input synapses: n_j ϑ_j ≈ Σ_c s_in W_in[j,c] e_jc, with e_jc the S-PSP of channel c at
  ///     j's spikes (each spike: the PSP of c's events since j's previous reset), so
  ///     ∂L/∂W_in[j,c] = ∂L/∂n_j · s_in e_jc / ϑ_j.
  /// A silent neuron counts as one virtual spike at its membrane's peak, weighted by ϑ_j·σ′(V_max −
  /// ϑ_j) (the surrogate), so neurons near threshold still learn. x̄ = 0. Throws as
  /// vjp_at_record.
  Cotangents vjp_spike_train(const MatrixRef& x, const VectorRef& theta, const SpikeRecord& record,
                             const MatrixRef& y_bar) const;

  /// The twin's output side driven by given hidden spikes (batch × T·H, e.g. a chip's): the
  /// record holds those spikes, the twin's readout traces and outputs from them. For the mock
  /// fit's readout part. Throws std::invalid_argument on shapes.
  SpikeRecord replay(const MatrixRef& x, const VectorRef& theta, const MatrixRef& hidden_spikes) const;

  /// The hxtorch pattern of physics-aware training: the cotangents of L(y) where y = r·max_t U of
  /// the *measured* `record` (hidden spikes and output traces of the chip for batch x at θ). The
  /// hidden membranes are recomputed from the inputs with the measured spikes resetting them, the
  /// surrogate is evaluated there, and the maxima are taken where the measured traces peak.
  /// Throws std::invalid_argument on shapes (record rows = batch, T·H and T·O columns).
  Cotangents vjp_at_record(const MatrixRef& x, const VectorRef& theta, const SpikeRecord& record,
                           const MatrixRef& y_bar) const;

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 16; }
  // vjp_at_record's check of the record's shapes against x.
  void check_record(const MatrixRef& x, const SpikeRecord& rec) const;
  // record (hidden_spikes null: the twin's own) or replay.
  SpikeRecord record_with(const MatrixRef& x, const VectorRef& theta,
                          const MatrixRef* hidden_spikes) const;

  SpikingLifConfig config_;
};

}  // namespace pnn::digital_twin
