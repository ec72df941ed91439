#include "pnn/proto/wire.hpp"

#include <cstring>
#include <system_error>

namespace pnn::wire {

namespace {
// A wire tensor's floats seen as a row-major matrix.
using WireMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using WireMap = Eigen::Map<WireMatrix>;
using ConstWireMap = Eigen::Map<const WireMatrix>;
}  // namespace

std::string encode_protocol_frame(std::uint16_t major) {
  std::string frame = "PNND";
  frame.push_back(static_cast<char>(major >> 8));
  frame.push_back(static_cast<char>(major & 0xff));
  return frame;
}

std::optional<std::uint16_t> decode_protocol_frame(std::string_view frame) {
  if (frame.size() != kProtocolFrameSize || frame.substr(0, 4) != "PNND") return std::nullopt;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(frame[4]) << 8) |
                                    static_cast<unsigned char>(frame[5]));
}

void to_tensor(const MatrixRef& m, v1::Tensor* out) {
  out->Clear();
  out->add_shape(static_cast<std::uint32_t>(m.rows()));
  out->add_shape(static_cast<std::uint32_t>(m.cols()));
  auto* data = out->mutable_data();
  data->Resize(static_cast<int>(m.size()), 0.0f);
  // Eigen is column-major; the wire is row-major. One vectorised conversion through a row-major
  // view (this runs on every Forward reply).
  WireMap(data->mutable_data(), m.rows(), m.cols()) = m.cast<float>();
}

v1::Tensor to_tensor(const MatrixRef& m) {
  v1::Tensor t;
  to_tensor(m, &t);
  return t;
}

common::Result<Matrix> from_tensor(const v1::Tensor& t, const std::string& what) {
  auto shape_text = [&] {
    std::string s = "[";
    for (int i = 0; i < t.shape_size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape(i));
    return s + "]";
  };
  if (t.shape_size() != 2 || t.shape(0) < 1) {
    return common::Error{std::make_error_code(std::errc::invalid_argument),
                               what + " has shape " + shape_text() +
                                   "; expected [batch, features] with batch ≥ 1"};
  }
  const std::uint64_t rows = t.shape(0), cols = t.shape(1);
  if (rows * cols != static_cast<std::uint64_t>(t.data_size())) {
    return common::Error{std::make_error_code(std::errc::invalid_argument),
                               what + " has shape " + shape_text() + " but " +
                                   std::to_string(t.data_size()) + " values (expected " +
                                   std::to_string(rows * cols) + ")"};
  }
  Matrix m = ConstWireMap(t.data().data(), static_cast<Index>(rows), static_cast<Index>(cols))
                 .cast<double>();
  return m;
}

void to_vec(const VectorRef& v, v1::Vec* out) {
  out->mutable_data()->Resize(static_cast<int>(v.size()), 0.0);
  if (v.size() > 0) std::memcpy(out->mutable_data()->mutable_data(), v.data(), v.size() * sizeof(double));
}

Vector from_vec(const v1::Vec& v) {
  Vector out(v.data_size());
  if (v.data_size() > 0) std::memcpy(out.data(), v.data().data(), out.size() * sizeof(double));
  return out;
}

std::string to_string(v1::StatusCode code) { return v1::StatusCode_Name(code); }

}  // namespace pnn::wire
