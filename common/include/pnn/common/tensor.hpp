#pragma once
/// Dense tensor types shared by every layer of pnn-hil (the one third-party type in pnn::common's
/// public headers: Eigen is the tensor type).
///
/// Convention, decided once for the whole project: a batch is a `Matrix` with **one sample per
/// row** (batch × features), like PyTorch and like the row-major float arrays on the wire.
/// Parameters of a model are one flat `Vector` θ; each model documents its layout.
#include <Eigen/Core>
#include <cstdint>
#include <string>

namespace pnn {

using Index = Eigen::Index;
using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using MatrixRef = Eigen::Ref<const Matrix>;
using VectorRef = Eigen::Ref<const Vector>;

/// "3×4": for error messages.
std::string shape_string(Index rows, Index cols);
inline std::string shape_string(const MatrixRef& m) { return shape_string(m.rows(), m.cols()); }

/// True when every entry is finite (no NaN, no ±Inf).
inline bool all_finite(const MatrixRef& m) { return m.allFinite(); }

}  // namespace pnn
