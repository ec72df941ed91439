#include "pnn/digital_twin/fast_math.hpp"

namespace pnn::digital_twin {
namespace {

// π/2 split into three parts whose products with small integers are exact (Cephes DP1..DP3 × 2).
constexpr double kPio2Hi = 2 * 7.85398125648498535156e-1;
constexpr double kPio2Mid = 2 * 3.77489470793079817668e-8;
constexpr double kPio2Lo = 2 * 2.69515142907905952645e-15;
constexpr double kTwoOverPi = 0.63661977236758134308;
constexpr double kMaxReduced = 1e5;

template <class A>
auto sin_poly(const A& r, const A& z) {
  return r + r * z *
                 (((((1.58962301576546568060e-10 * z - 2.50507477628578072866e-8) * z +
                     2.75573136213857245213e-6) * z - 1.98412698295895385996e-4) * z +
                   8.33333333332211858878e-3) * z - 1.66666666666666307295e-1);
}

template <class A>
auto cos_poly(const A& z) {
  return 1.0 - 0.5 * z +
         z * z *
             (((((-1.13585365213876817300e-11 * z + 2.08757008419747316778e-9) * z -
                 2.75573141792967388112e-7) * z + 2.48015872888517045348e-5) * z -
               1.38888888888730564116e-3) * z + 4.16666666666665929218e-2);
}

}  // namespace

void sincos(const Eigen::ArrayXXd& x, Eigen::ArrayXXd* s, Eigen::ArrayXXd* c) {
  if (x.size() == 0 || x.abs().maxCoeff() > kMaxReduced || !x.allFinite()) {
    if (s) *s = x.sin();
    if (c) *c = x.cos();
    return;
  }
  const Eigen::ArrayXXd k = (x * kTwoOverPi).round();
  const Eigen::ArrayXXd r = ((x - k * kPio2Hi) - k * kPio2Mid) - k * kPio2Lo;
  const Eigen::ArrayXXd z = r * r;
  const Eigen::ArrayXXd ps = sin_poly(r, z);
  const Eigen::ArrayXXd pc = cos_poly(z);
  // Quadrant m = k mod 4 ∈ {0,1,2,3}, as exact doubles; odd quadrants swap sin and cos.
  const Eigen::ArrayXXd m = k - 4.0 * (k * 0.25).floor();
  const Eigen::ArrayXXd odd = m - 2.0 * (m * 0.5).floor();
  if (s) {
    // sin: +ps, +pc, −ps, −pc for m = 0..3
    const Eigen::ArrayXXd sign = 1.0 - 2.0 * (m * 0.5).floor();
    *s = sign * (odd * pc + (1.0 - odd) * ps);
  }
  if (c) {
    // cos: +pc, −ps, −pc, +ps for m = 0..3
    const Eigen::ArrayXXd sign = 1.0 - 2.0 * ((m + 1.0) * 0.5).floor() + 4.0 * (m * (1.0 / 3.0)).floor();
    *c = sign * (odd * ps + (1.0 - odd) * pc);
  }
}

Eigen::ArrayXXd fast_sin(const Eigen::ArrayXXd& x) {
  Eigen::ArrayXXd s;
  sincos(x, &s, nullptr);
  return s;
}

}  // namespace pnn::digital_twin
