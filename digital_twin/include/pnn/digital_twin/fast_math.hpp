#pragma once
/// Vectorised sine and cosine for double arrays: the inner loop of the oscillator models spends
/// most of its time here, and libm's scalar sin/cos do not vectorise.
///
/// Method: Cody–Waite reduction by π/2 in three parts, then the Cephes minimax polynomials on
/// [−π/4, π/4]. Error ≤ 2 ulp-ish for |x| ≤ 1e5 (tested against libm to 1e-15 absolute);
/// larger |x| falls back to libm, so results stay correct for any finite input.
#include <Eigen/Core>

namespace pnn::digital_twin {

/// s = sin(x), c = cos(x) element-wise (s or c may be null to skip it).
void sincos(const Eigen::ArrayXXd& x, Eigen::ArrayXXd* s, Eigen::ArrayXXd* c);

/// The same on `size` contiguous doubles: s[i] = sin(x[i]), c[i] = cos(x[i]) (s or c may be null;
/// either may alias x).
void sincos(const double* x, Eigen::Index size, double* s, double* c);

}  // namespace pnn::digital_twin
