#include "pnn/training/network.hpp"

#include <limits>
#include <stdexcept>

namespace pnn::training {

void Network::add_digital(std::string name, digital_twin::ModelPtr model, Vector theta) {
  if (!layers_.empty() && layers_.back().model->num_outputs() != model->num_inputs()) {
    throw std::invalid_argument("layer '" + name + "' takes " + std::to_string(model->num_inputs()) +
                                " inputs but the previous layer gives " +
                                std::to_string(layers_.back().model->num_outputs()));
  }
  if (theta.size() != model->num_params()) {
    throw std::invalid_argument("layer '" + name + "': θ has " + std::to_string(theta.size()) +
                                " entries, the model needs " + std::to_string(model->num_params()));
  }
  const double inf = std::numeric_limits<double>::infinity();
  const Index n = theta.size();
  layers_.push_back({std::move(name), std::move(model), nullptr, std::move(theta),
                     Vector::Constant(n, -inf), Vector::Constant(n, inf)});
}

void Network::add_physical(std::string name, drivers::PhysicalSystem& device,
                           digital_twin::ModelPtr twin, Vector theta, DeviceExecutor executor) {
  const auto& spec = device.spec();
  if (twin->num_inputs() != spec.num_inputs || twin->num_outputs() != spec.num_outputs ||
      twin->num_params() != spec.num_params()) {
    throw std::invalid_argument("layer '" + name + "': twin " + twin->name() +
                                " does not match device " + spec.serial + " sizes");
  }
  add_digital(name, std::move(twin), std::move(theta));
  Layer& layer = layers_.back();
  layer.device = &device;
  layer.executor = std::move(executor);
  layer.theta_min = spec.param_min();
  layer.theta_max = spec.param_max();
  layer.theta = layer.theta.cwiseMax(layer.theta_min).cwiseMin(layer.theta_max);
}

Index Network::num_inputs() const { return layers_.empty() ? 0 : layers_.front().model->num_inputs(); }
Index Network::num_outputs() const { return layers_.empty() ? 0 : layers_.back().model->num_outputs(); }
Index Network::num_params() const {
  Index n = 0;
  for (const auto& l : layers_) n += l.theta.size();
  return n;
}

Matrix Network::layer_input(const Layer& layer, const Matrix& x) const {
  if (!layer.is_physical()) return x;
  const auto& spec = layer.device->spec();
  return x.cwiseMax(spec.input_min).cwiseMin(spec.input_max);
}

Result<Trace> Network::forward(const MatrixRef& x, Mode mode) const {
  Trace trace;
  trace.inputs.reserve(layers_.size());
  Matrix h = x;
  for (const auto& layer : layers_) {
    // The recorded input is the unclipped one; clipping is re-applied (and differentiated) in
    // backward, so the saturation has zero gradient.
    trace.inputs.push_back(h);
    const Matrix in = layer_input(layer, h);
    if (layer.is_physical() && mode == Mode::kHardware) {
      auto y = on_device(layer.executor, [&] { return layer.device->forward(in, layer.theta); });
      if (!y) {
        return drivers::Error{y.error().code, "layer '" + layer.name + "': " + y.error().message};
      }
      h = std::move(y).value();
    } else {
      h = layer.model->forward(in, layer.theta);
    }
  }
  trace.output = std::move(h);
  return trace;
}

std::vector<Vector> Network::backward(const Trace& trace, const MatrixRef& y_bar) const {
  if (trace.inputs.size() != layers_.size()) {
    throw std::logic_error("Network::backward: trace does not belong to this network");
  }
  std::vector<Vector> grads(layers_.size());
  Matrix g = y_bar;
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const Layer& layer = layers_[i];
    const Matrix& raw = trace.inputs[i];
    auto cot = layer.model->vjp(layer_input(layer, raw), layer.theta, g);
    grads[i] = std::move(cot.theta_bar);
    if (i == 0) break;
    g = std::move(cot.x_bar);
    if (layer.is_physical()) {
      const auto& spec = layer.device->spec();
      g = (raw.array() < spec.input_min || raw.array() > spec.input_max).select(0.0, g);
    }
  }
  return grads;
}

}  // namespace pnn::training
