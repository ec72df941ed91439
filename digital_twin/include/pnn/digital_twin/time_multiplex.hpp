#pragma once
/// The time-multiplexed drive of the slot setups (the RLC-junction circuit, the speaker-driven
/// plate) and of the instruments that play it (the SCPI circuit driver's AWG waveform): one run
/// per sample, a drive of 2K slots of equal length, data and parameter interleaved
///
///   [x_0 | θ_0 | x_1 | θ_1 | … | x_{K−1} | θ_{K−1}]     (levels held constant within a slot)
///
/// and output k read from window k = (slot x_k, slot θ_k). Written once here so the twins, the
/// realities and the driver cannot disagree on the layout. Pure functions, thread-safe.
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// Drive levels of every slot, batch × 2K: column 2k = x_k, column 2k+1 = θ_k.
/// Precondition (checked by the callers' shape checks): x.cols() == θ.size() == K.
Matrix time_multiplexed_levels(const MatrixRef& x, const VectorRef& theta);

/// The adjoint of `time_multiplexed_levels`: ∂L/∂x (batch × K) and ∂L/∂θ (summed over the
/// batch) for ∂L/∂levels (batch × 2K).
Cotangents time_multiplexed_cotangents(const MatrixRef& level_bar);

/// Output windows: the mean of each of `num_windows` consecutive equal groups of samples,
/// batch × (num_windows · per_window) → batch × num_windows. Precondition: samples.cols() is a
/// multiple of num_windows.
Matrix window_means(const MatrixRef& samples, Index num_windows);

/// The adjoint of `window_means`: ∂L/∂samples (batch × num_windows · per_window) for ∂L/∂y.
Matrix window_means_cotangent(const MatrixRef& y_bar, Index per_window);

}  // namespace pnn::digital_twin
