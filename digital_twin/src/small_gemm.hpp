#pragma once
// G = S·M + 1·e for the oscillator integrator's stage product: S is a batch shard (rows × k,
// column-major, rows typically 8–256), M an n × n-ish stiffness matrix (k × n, column-major) that
// stays in L1/L2 across the stages of a call, e a row added to every row of G (or null).
//
// Why not Eigen's GEMM: at these shapes (16 × 64 · 64 × 64 is the benchmark's shard) Eigen packs
// S and the whole of M into panels on every call, which costs about as much as the product
// (docs/benchmarks.md, issue 18). Here S's columns are already contiguous vectors of rows, so
// the micro-kernel reads S and M in place: for each block of 2 SIMD vectors of rows and 6
// columns of M it keeps 12 accumulators (enough independent FMAs to cover their latency on two
// FMA pipes) and broadcasts one element of M per column and step of k. GCC/Clang vector
// extensions: AVX2 ymm registers with -march=native, pairs of SSE registers without it.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include <Eigen/Core>

namespace pnn::digital_twin::detail {

template <class T>
struct SimdOf {
  typedef float F8 __attribute__((vector_size(32)));
  typedef double D4 __attribute__((vector_size(32)));
  using type = std::conditional_t<std::is_same_v<T, float>, F8, D4>;
  static constexpr Eigen::Index width = 32 / sizeof(T);
};

// The k-chunk [k0, k1) and column panel [j0, j1) of m being multiplied; later k-chunks
// accumulate onto g, the first starts from e (or 0).
struct StageRange {
  Eigen::Index k0, k1, j0, j1;
  bool accumulate;
};

// One block: rows r0 .. r0 + RV·width of g, columns j .. j + CB, over rg's k-chunk.
template <class T, int RV, int CB>
inline void stage_gemm_block(const T* s, Eigen::Index ls, Eigen::Index r0, const T* m,
                             Eigen::Index ldm, const StageRange& rg, Eigen::Index j, const T* e,
                             T* g, Eigen::Index lg) {
  using V = typename SimdOf<T>::type;
  constexpr Eigen::Index w = SimdOf<T>::width;
  V acc[CB][RV];
  for (int q = 0; q < CB; ++q) {
    const T init = e ? e[j + q] : T(0);
    for (int v = 0; v < RV; ++v) {
      if (rg.accumulate) {
        std::memcpy(&acc[q][v], g + (j + q) * lg + r0 + v * w, sizeof(V));
      } else {
        acc[q][v] = V{} + init;
      }
    }
  }
  const T* mj = m + j * ldm;
  for (Eigen::Index p = rg.k0; p < rg.k1; ++p) {
    V sv[RV];
    for (int v = 0; v < RV; ++v) std::memcpy(&sv[v], s + p * ls + r0 + v * w, sizeof(V));
    for (int q = 0; q < CB; ++q) {
      const T mv = mj[q * ldm + p];
      for (int v = 0; v < RV; ++v) acc[q][v] += sv[v] * mv;
    }
  }
  for (int q = 0; q < CB; ++q) {
    for (int v = 0; v < RV; ++v) std::memcpy(g + (j + q) * lg + r0 + v * w, &acc[q][v], sizeof(V));
  }
}

template <class T, int RV>
inline void stage_gemm_rows(const T* s, Eigen::Index ls, Eigen::Index r0, const T* m,
                            Eigen::Index ldm, const StageRange& rg, const T* e, T* g,
                            Eigen::Index lg) {
  Eigen::Index j = rg.j0;
  for (; j + 6 <= rg.j1; j += 6) stage_gemm_block<T, RV, 6>(s, ls, r0, m, ldm, rg, j, e, g, lg);
  if (j + 4 <= rg.j1) stage_gemm_block<T, RV, 4>(s, ls, r0, m, ldm, rg, j, e, g, lg), j += 4;
  if (j + 2 <= rg.j1) stage_gemm_block<T, RV, 2>(s, ls, r0, m, ldm, rg, j, e, g, lg), j += 2;
  if (j < rg.j1) stage_gemm_block<T, RV, 1>(s, ls, r0, m, ldm, rg, j, e, g, lg);
}

/// g(rows × n, leading dimension lg) = s(rows × k, ld ls) · m(k × n, ld ldm) + 1·e, all
/// column-major; e may be null. g must not alias s or m.
///
/// Up to 256 × 192 of m (kc × nc, ≤ 384 KiB of doubles: in L2) is multiplied into every row
/// block before the next panel: without this blocking a shard of 128 rows re-read all of a large
/// A from L3 for every 8 rows (float64 at N = 1024 fell from 51 to 21 GFLOP/s a core).
template <class T>
void stage_gemm(const T* s, Eigen::Index ls, Eigen::Index rows, const T* m, Eigen::Index ldm,
                Eigen::Index k, Eigen::Index n, const T* e, T* g, Eigen::Index lg) {
  constexpr Eigen::Index w = SimdOf<T>::width, kc = 256, nc = 192;
  if (k == 0) {
    for (Eigen::Index j = 0; j < n; ++j) {
      for (Eigen::Index r = 0; r < rows; ++r) g[j * lg + r] = e ? e[j] : T(0);
    }
    return;
  }
  for (Eigen::Index k0 = 0; k0 < k; k0 += kc) {
    for (Eigen::Index j0 = 0; j0 < n; j0 += nc) {
      const StageRange rg{k0, std::min(k, k0 + kc), j0, std::min(n, j0 + nc), k0 > 0};
      Eigen::Index r0 = 0;
      for (; r0 + 2 * w <= rows; r0 += 2 * w) stage_gemm_rows<T, 2>(s, ls, r0, m, ldm, rg, e, g, lg);
      if (r0 + w <= rows) stage_gemm_rows<T, 1>(s, ls, r0, m, ldm, rg, e, g, lg), r0 += w;
      for (; r0 < rows; ++r0) {  // fewer than one vector of rows left
        for (Eigen::Index j = rg.j0; j < rg.j1; ++j) {
          T acc = rg.accumulate ? g[j * lg + r0] : (e ? e[j] : T(0));
          for (Eigen::Index p = rg.k0; p < rg.k1; ++p) acc += s[p * ls + r0] * m[j * ldm + p];
          g[j * lg + r0] = acc;
        }
      }
    }
  }
}

}  // namespace pnn::digital_twin::detail
