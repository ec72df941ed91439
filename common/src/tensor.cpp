#include "pnn/common/tensor.hpp"

namespace pnn {

std::string shape_string(Index rows, Index cols) {
  return std::to_string(rows) + "×" + std::to_string(cols);
}

}  // namespace pnn
