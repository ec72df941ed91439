#pragma once
/// Gaussian noise for the reality simulators' per-call trial noise, vectorised: Box–Muller on
/// blocks of uniforms, with Eigen's vectorised log and sqrt and the blocked sine/cosine of
/// digital_twin/fast_math.hpp. `std::normal_distribution` (Marsaglia's polar method, one
/// rejection loop per pair) costs ≈ 20 ns a sample and runs on the calling thread before and
/// after every batch of the physics, as long as the physics itself for a small batch
/// (docs/benchmarks.md, issue 18); this costs a few ns. The stream is a deterministic function
/// of the engine's state, like the one it replaces, but a different one: the same seed gives
/// other noise values than before.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <random>

#include "pnn/digital_twin/fast_math.hpp"

namespace pnn::drivers::sim {

/// data[i] += std · N(0, 1) for i < size, drawing from rng (one 64-bit draw per sample).
inline void add_gaussian(std::mt19937_64& rng, double std, double* data, Eigen::Index size) {
  constexpr Eigen::Index kBlock = 256;  // pairs per block: the block's arrays stay in L1
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  constexpr double kTo01 = 1.0 / 9007199254740992.0;  // 2^-53
  Eigen::Array<double, Eigen::Dynamic, 1> u1(kBlock), u2(kBlock), s(kBlock), c(kBlock);
  for (Eigen::Index done = 0; done < size;) {
    const Eigen::Index pairs = std::min(kBlock, (size - done + 1) / 2);
    for (Eigen::Index i = 0; i < pairs; ++i) {
      u1[i] = static_cast<double>((rng() >> 11) + 1) * kTo01;  // (0, 1]: log(u1) finite
      u2[i] = static_cast<double>(rng() >> 11) * kTo01 * kTwoPi;
    }
    auto r = u1.head(pairs);
    r = (-2.0 * r.log()).sqrt() * std;
    digital_twin::sincos(u2.data(), pairs, s.data(), c.data());
    // The cosines fill `pairs` samples, the sines the rest (one fewer when one sample is left).
    const Eigen::Index take = std::min(2 * pairs, size - done);
    Eigen::Map<Eigen::ArrayXd> out(data + done, take);
    out.head(pairs) += r * c.head(pairs);
    out.tail(take - pairs) += r.head(take - pairs) * s.head(take - pairs);
    done += take;
  }
}

}  // namespace pnn::drivers::sim
