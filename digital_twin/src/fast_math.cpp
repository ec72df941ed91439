#include "pnn/digital_twin/fast_math.hpp"

#include <algorithm>

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

namespace {

// The arrays are processed in blocks of this many elements, each through every step of the
// method before the next block: the block's temporaries stay in L1 instead of streaming eight
// whole-array temporaries through memory (the oscillator's stage arrays are batch × n).
constexpr Eigen::Index kBlock = 256;
using BlockArray = Eigen::Array<double, Eigen::Dynamic, 1, Eigen::ColMajor, kBlock, 1>;

void sincos_block(Eigen::Map<const Eigen::ArrayXd> x, double* s_out, double* c_out) {
  const Eigen::Index len = x.size();
  if (x.abs().maxCoeff() > kMaxReduced || !x.allFinite()) {
    const BlockArray sin_x = x.sin(), cos_x = x.cos();
    if (s_out) Eigen::Map<Eigen::ArrayXd>(s_out, len) = sin_x;
    if (c_out) Eigen::Map<Eigen::ArrayXd>(c_out, len) = cos_x;
    return;
  }
  const BlockArray k = (x * kTwoOverPi).round();
  const BlockArray r = ((x - k * kPio2Hi) - k * kPio2Mid) - k * kPio2Lo;
  const BlockArray z = r * r;
  const BlockArray ps = sin_poly(r, z);
  const BlockArray pc = cos_poly(z);
  // Quadrant m = k mod 4 ∈ {0,1,2,3}, as exact doubles; odd quadrants swap sin and cos.
  const BlockArray m = k - 4.0 * (k * 0.25).floor();
  const BlockArray odd = m - 2.0 * (m * 0.5).floor();
  if (s_out) {
    // sin: +ps, +pc, −ps, −pc for m = 0..3
    Eigen::Map<Eigen::ArrayXd>(s_out, len) =
        (1.0 - 2.0 * (m * 0.5).floor()) * (odd * pc + (1.0 - odd) * ps);
  }
  if (c_out) {
    // cos: +pc, −ps, −pc, +ps for m = 0..3
    Eigen::Map<Eigen::ArrayXd>(c_out, len) =
        (1.0 - 2.0 * ((m + 1.0) * 0.5).floor() + 4.0 * (m * (1.0 / 3.0)).floor()) *
        (odd * ps + (1.0 - odd) * pc);
  }
}

}  // namespace

void sincos(const double* x, Eigen::Index size, double* s, double* c) {
  // An element-wise result aliasing x is fine: each block is read before it is written.
  for (Eigen::Index i = 0; i < size; i += kBlock) {
    const Eigen::Index len = std::min(kBlock, size - i);
    sincos_block(Eigen::Map<const Eigen::ArrayXd>(x + i, len), s ? s + i : nullptr,
                 c ? c + i : nullptr);
  }
}

void sincos(const Eigen::ArrayXXd& x, Eigen::ArrayXXd* s, Eigen::ArrayXXd* c) {
  if (s) s->resize(x.rows(), x.cols());
  if (c) c->resize(x.rows(), x.cols());
  sincos(x.data(), x.size(), s ? s->data() : nullptr, c ? c->data() : nullptr);
}

}  // namespace pnn::digital_twin
