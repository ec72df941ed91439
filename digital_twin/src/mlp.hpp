#pragma once
// The tanh MLP shared by the learned twins (mlp_twin.cpp, neural_ode.cpp). Private to
// digital_twin. Weight layout: per layer W (outputs × inputs, row-major), then b.
#include <vector>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::digital_twin::detail {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The MLP over rows [x̂ | ĉ], where ĉ is one vector shared by every row (the normalised θ). Its
// contribution to the first layer is computed once per batch instead of once per row.
class Mlp {
 public:
  Mlp(const std::vector<Index>& sizes, const Vector& weights, Index num_x)
      : sizes_(sizes), w_(weights), nx_(num_x) {}

  Index layers() const { return static_cast<Index>(sizes_.size()) - 1; }

  /// Returns the output; `acts` gets each layer's input (acts[0] = x̂) and the output last.
  Matrix forward(const Matrix& xh, const Vector& c, std::vector<Matrix>* acts) const {
    Matrix h = xh;
    Index off = 0;
    if (acts) acts->assign(1, xh);
    for (Index l = 0; l < layers(); ++l) {
      const auto [w, b] = layer(l, off);
      Matrix pre;
      if (l == 0) {
        pre.noalias() = h * w.leftCols(nx_).transpose();
        Vector bias = b;
        if (c.size() != 0) bias.noalias() += w.rightCols(c.size()) * c;
        pre.rowwise() += bias.transpose();
      } else {
        pre.noalias() = h * w.transpose();
        pre.rowwise() += b.transpose();
      }
      h = l + 1 < layers() ? Matrix(pre.array().tanh().matrix()) : std::move(pre);
      if (acts) acts->push_back(h);
    }
    return h;
  }

  /// Reverse pass from the output cotangent: returns x̂̄, sets ĉ̄ (summed over rows) and adds
  /// the weights' cotangent into w_bar if given.
  Matrix backward(const std::vector<Matrix>& acts, const Vector& c, const Matrix& out_bar,
                  Vector* c_bar, Vector* w_bar) const {
    std::vector<Index> offsets(static_cast<std::size_t>(layers()));
    Index off = 0;
    for (Index l = 0; l < layers(); ++l) {
      offsets[static_cast<std::size_t>(l)] = off;
      off += sizes_[l + 1] * sizes_[l] + sizes_[l + 1];
    }
    Matrix g = out_bar;  // cotangent of the layer's pre-activation
    for (Index l = layers() - 1; l >= 0; --l) {
      Index o = offsets[static_cast<std::size_t>(l)];
      const auto [w, b] = layer(l, o);
      const Index out = sizes_[l + 1], in = sizes_[l];
      const Vector g_sum = g.colwise().sum().transpose();
      if (w_bar) {
        const Index at = offsets[static_cast<std::size_t>(l)];
        Eigen::Map<RowMajor> wb(w_bar->data() + at, out, in);
        wb.leftCols(acts[l].cols()).noalias() += g.transpose() * acts[l];
        if (l == 0 && c.size() != 0) wb.rightCols(c.size()).noalias() += g_sum * c.transpose();
        w_bar->segment(at + out * in, out) += g_sum;
      }
      if (l == 0) {
        if (c_bar) *c_bar = c.size() != 0 ? Vector(w.rightCols(c.size()).transpose() * g_sum) : Vector();
        return g * w.leftCols(nx_);
      }
      g = ((g * w).array() * (1.0 - acts[l].array().square())).matrix();
    }
    return g;  // not reached: layers() ≥ 1
  }

 private:
  struct Layer {
    Eigen::Map<const RowMajor> w;
    Eigen::Map<const Vector> b;
  };
  // Layer l's weights at offset `off`, which moves past them.
  Layer layer(Index l, Index& off) const {
    const Index out = sizes_[l + 1], in = sizes_[l];
    Layer out_layer{Eigen::Map<const RowMajor>(w_.data() + off, out, in),
                    Eigen::Map<const Vector>(w_.data() + off + out * in, out)};
    off += out * in + out;
    return out_layer;
  }

  const std::vector<Index>& sizes_;
  const Vector& w_;
  Index nx_;
};

}  // namespace pnn::digital_twin::detail
