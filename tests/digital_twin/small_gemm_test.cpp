// The oscillator integrator's stage product (digital_twin/src/small_gemm.hpp) against Eigen's
// GEMM, over shapes that reach every path of the kernel: row blocks of two vectors, one vector
// and single rows; column blocks of 6, 4, 2 and 1; several k-chunks and column panels; leading
// dimensions larger than the rows.
#include "../../digital_twin/src/small_gemm.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>

namespace {

template <class T>
void check_shape(Eigen::Index rows, Eigen::Index k, Eigen::Index n, bool bias, Eigen::Index pad) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using Row = Eigen::Matrix<T, 1, Eigen::Dynamic>;
  // s and g live in larger matrices (leading dimension rows + pad); m has ld k + pad.
  Mat s_store = Mat::Random(rows + pad, k), m_store = Mat::Random(k + pad, n);
  Mat g_store = Mat::Constant(rows + pad, n, T(7));
  const Row e = Row::Random(n);
  pnn::digital_twin::detail::stage_gemm<T>(s_store.data(), rows + pad, rows, m_store.data(), k + pad,
                                           k, n, bias ? e.data() : nullptr, g_store.data(), rows + pad);
  Mat expected = s_store.topRows(rows) * m_store.topRows(k);
  if (bias) expected.rowwise() += e;
  const T tol = std::is_same_v<T, float> ? T(1e-4) : T(1e-12);
  INFO("rows=" << rows << " k=" << k << " n=" << n << " bias=" << bias << " pad=" << pad);
  CHECK((g_store.topRows(rows) - expected).cwiseAbs().maxCoeff() <= tol * (1 + k));
  // Rows past `rows` (the padding) are never written.
  if (pad > 0) CHECK((g_store.bottomRows(pad).array() == T(7)).all());
}

}  // namespace

TEST_CASE("stage_gemm matches Eigen's product for every row and column remainder") {
  for (Eigen::Index rows : {1, 3, 4, 7, 8, 9, 15, 16, 17, 21, 24, 31, 33, 64}) {
    for (Eigen::Index n : {1, 2, 3, 5, 6, 7, 11, 13, 64, 74}) {
      for (bool bias : {false, true}) {
        check_shape<double>(rows, n, n, bias, 0);
        check_shape<float>(rows, n, n, bias, 0);
      }
    }
  }
  // Non-square, and leading dimensions larger than the block.
  check_shape<double>(21, 9, 14, true, 5);
  check_shape<float>(27, 13, 10, false, 3);
  // More than one 256-deep k-chunk and one 192-wide column panel: later chunks accumulate onto
  // g, in every row path.
  for (Eigen::Index rows : {5, 13, 21, 40}) {
    check_shape<double>(rows, 600, 401, true, 2);
    check_shape<float>(rows, 257, 193, false, 0);
    check_shape<float>(rows, 512, 384, true, 1);
  }
}
