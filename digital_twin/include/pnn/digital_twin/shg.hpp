#pragma once
/// Ultrafast second-harmonic generation (SHG) behind a pulse shaper, PHYSICS.md "Optical (a)".
///
///   A_k = √S0_k · m_k,   S0_k = exp(−(k − c)² / (2σ²)),   c = (K − 1) / 2
///   B_n = κ Σ_k A_k A_{n−k}                      (SH field: autoconvolution of the FH spectrum)
///   y_j = Σ_{n ∈ bin j} B_n²                     (spectrometer bins)
///
/// The pulse shaper has K = num_inputs + num_params spectral channels, each with a modulator
/// transmission m_k in [0, 1]: the data occupy num_inputs channels and the trainable θ the others,
/// interleaved evenly across the spectrum (`ShgLayout`), so that every SH frequency mixes data with
/// data, data with θ and θ with θ. The spectrometer sees the central K SH frequencies
/// n ∈ [⌊K/2⌋, ⌊K/2⌋ + K), split into num_outputs contiguous bins of (near-)equal width.
///
/// Units: m and θ are transmissions (1); y is in the spectrometer's unit (kcounts for the
/// simulated instrument), so κ is in √(output unit). The twin is real (no spectral phase) and
/// noise-free; the reality simulator adds what it leaves out (drivers/sim/shg_reality.hpp).
///
/// θ layout: one transmission per trainable channel, in channel order (θ[i] drives
/// `layout().param_channels[i]`).
/// Physical parameters φ = (κ, σ): the SH gain and the RMS width of the fundamental power spectrum
/// in channels; calibration fits both. Reverse mode is exact (`vjp`, `physical_vjp`).
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct ShgConfig {
  Index num_inputs = 0;    ///< data channels of the pulse shaper (≥ 1)
  Index num_params = 0;    ///< trainable channels (≥ 0)
  Index num_outputs = 0;   ///< spectrometer bins (1 … K)
  double gain = 1.0;       ///< κ, √(output unit); finite
  double bandwidth = 0.0;  ///< σ of S0 in channels; ≤ 0 means the default K / 2.5
};

/// Which pulse-shaper channel carries what, and which spectrometer bin each SH frequency lands in.
/// Shared by the twin and the reality simulator (the wiring of the setup is known exactly).
struct ShgLayout {
  Index num_channels = 0;             ///< K
  std::vector<Index> data_channels;   ///< channel of data entry i (ascending)
  std::vector<Index> param_channels;  ///< channel of θ entry i (ascending)
  Index window_start = 0;             ///< first SH frequency the spectrometer sees (⌊K/2⌋)
  Index window_size = 0;              ///< number of SH frequencies seen (K)
  std::vector<Index> bin_of;          ///< spectrometer bin of SH frequency window_start + i

  /// Throws std::invalid_argument on num_inputs < 1, num_params < 0, or num_outputs outside 1..K.
  static ShgLayout make(Index num_inputs, Index num_params, Index num_outputs);
};

class ShgModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on bad sizes (see ShgLayout::make) or non-finite κ, σ.
  explicit ShgModel(ShgConfig config);

  std::string name() const override { return "optical-shg"; }
  Index num_inputs() const override { return config_.num_inputs; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_params; }
  /// 0.5 ± 0.1 uniform (deterministic in `seed`): mid-range transmissions, varied so that the
  /// trainable channels start distinct.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 2; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const ShgConfig& config() const { return config_; }
  const ShgLayout& layout() const { return layout_; }
  /// √S0_k for every channel (length K).
  const Vector& sqrt_spectrum() const { return sqrt_s0_; }

 private:
  struct Forward;
  Forward run(const MatrixRef& x, const VectorRef& theta) const;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  /// ∂L/∂A (batch × K) and the forward intermediates it needs.
  Matrix amplitude_bar(const Forward& f, const MatrixRef& y_bar) const;
  Index min_rows_per_shard() const override { return 32; }

  ShgConfig config_;
  ShgLayout layout_;
  Vector sqrt_s0_;
};

/// Spectral convolution restricted to a window: C.col(i) = Σ_k A.col(k) ∘ B.col(n − k) for
/// n = start + i, i < size, over 0 ≤ k, n − k < K. A and B are batch × K; rows are independent.
/// With B = A this is the SH field of real amplitudes (before κ); the reality simulator builds the
/// complex field from the real and imaginary parts.
Matrix spectral_convolution(const MatrixRef& a, const MatrixRef& b, Index start, Index size);

}  // namespace pnn::digital_twin
