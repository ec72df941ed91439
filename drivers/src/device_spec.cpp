#include "pnn/drivers/device_spec.hpp"

#include <sstream>
#include <stdexcept>

namespace pnn::drivers {

Index DeviceSpec::num_params() const {
  Index n = 0;
  for (const auto& b : params) n += b.count;
  return n;
}

namespace {
Vector expand(const std::vector<ParamBlock>& blocks, Index n, double ParamBlock::*field) {
  Vector v(n);
  Index at = 0;
  for (const auto& b : blocks) {
    v.segment(at, b.count).setConstant(b.*field);
    at += b.count;
  }
  return v;
}
}  // namespace

Vector DeviceSpec::param_min() const { return expand(params, num_params(), &ParamBlock::hard_min); }
Vector DeviceSpec::param_max() const { return expand(params, num_params(), &ParamBlock::hard_max); }

std::string DeviceSpec::param_name(Index i) const {
  Index at = 0;
  for (const auto& b : params) {
    if (i < at + b.count) return b.name + "[" + std::to_string(i - at) + "]";
    at += b.count;
  }
  throw std::out_of_range("parameter index " + std::to_string(i) + " beyond " +
                          std::to_string(at) + " parameters");
}

std::string DeviceSpec::describe() const {
  std::ostringstream out;
  out << kind << "  model " << model << "  serial " << serial << "  firmware " << firmware << "\n"
      << "  inputs   " << num_inputs << " × " << input_unit << " in [" << input_min << ", "
      << input_max << "]\n"
      << "  outputs  " << num_outputs << " × " << output_unit << " (noise ≈ " << output_noise_std
      << " " << output_unit << ")\n"
      << "  max batch " << max_batch << "\n"
      << "  parameters (" << num_params() << "):\n";
  for (const auto& b : params) {
    out << "    " << b.name << " × " << b.count << "  [" << b.hard_min << ", " << b.hard_max
        << "] " << b.unit << "  " << b.description << "\n";
  }
  return out.str();
}

}  // namespace pnn::drivers
