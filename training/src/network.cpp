#include "pnn/training/network.hpp"

#include <limits>
#include <stdexcept>

namespace pnn::training {

Index Layer::num_inputs() const { return device ? device->spec().num_inputs : model->num_inputs(); }
Index Layer::num_outputs() const {
  return device ? device->spec().num_outputs : model->num_outputs();
}
std::string Layer::kind() const { return model ? model->name() : device->spec().kind; }

namespace {

void check_sizes(const std::vector<Layer>& layers, const std::string& name, Index inputs,
                 Index params, const Vector& theta, const char* what) {
  if (!layers.empty() && layers.back().num_outputs() != inputs) {
    throw std::invalid_argument("layer '" + name + "' takes " + std::to_string(inputs) +
                                " inputs but the previous layer gives " +
                                std::to_string(layers.back().num_outputs()));
  }
  if (theta.size() != params) {
    throw std::invalid_argument("layer '" + name + "': θ has " + std::to_string(theta.size()) +
                                " entries, the " + what + " needs " + std::to_string(params));
  }
}

}  // namespace

void Network::add_digital(std::string name, digital_twin::ModelPtr model, Vector theta) {
  check_sizes(layers_, name, model->num_inputs(), model->num_params(), theta, "model");
  const double inf = std::numeric_limits<double>::infinity();
  const Index n = theta.size();
  layers_.push_back({std::move(name), std::move(model), nullptr, std::move(theta),
                     Vector::Constant(n, -inf), Vector::Constant(n, inf)});
}

void Network::add_physical(std::string name, drivers::PhysicalSystem& device,
                           digital_twin::ModelPtr twin, Vector theta, DeviceExecutor executor) {
  const auto& spec = device.spec();
  if (twin && (twin->num_inputs() != spec.num_inputs || twin->num_outputs() != spec.num_outputs ||
               twin->num_params() != spec.num_params())) {
    throw std::invalid_argument("layer '" + name + "': twin " + twin->name() +
                                " does not match device " + spec.serial + " sizes");
  }
  check_sizes(layers_, name, spec.num_inputs, spec.num_params(), theta, "device");
  Layer layer{std::move(name), std::move(twin), &device, std::move(theta), spec.param_min(),
              spec.param_max(), std::move(executor)};
  layer.backward_at_record =
      device.has_spike_run() &&
      dynamic_cast<const digital_twin::SpikingLifModel*>(layer.model.get()) != nullptr;
  layer.theta = layer.theta.cwiseMax(layer.theta_min).cwiseMin(layer.theta_max);
  layers_.push_back(std::move(layer));
}

Index Network::num_inputs() const { return layers_.empty() ? 0 : layers_.front().num_inputs(); }
Index Network::num_outputs() const { return layers_.empty() ? 0 : layers_.back().num_outputs(); }
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

std::vector<Vector> Network::thetas() const {
  std::vector<Vector> out;
  out.reserve(layers_.size());
  for (const auto& l : layers_) out.push_back(l.theta);
  return out;
}

Result<Trace> Network::forward(const MatrixRef& x, Mode mode) const {
  return forward(x, mode, {});
}

Result<Trace> Network::forward(const MatrixRef& x, Mode mode,
                               const std::vector<Vector>& thetas) const {
  if (!thetas.empty() && thetas.size() != layers_.size()) {
    throw std::logic_error("Network::forward: " + std::to_string(thetas.size()) +
                           " θ vectors for " + std::to_string(layers_.size()) + " layers");
  }
  Trace trace;
  trace.inputs.reserve(layers_.size());
  trace.records.resize(layers_.size());
  Matrix h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    // The recorded input is the unclipped one; clipping is re-applied (and differentiated) in
    // backward, so the saturation has zero gradient.
    trace.inputs.push_back(h);
    auto y = run_layer(i, h, mode, thetas.empty() ? nullptr : &thetas[i], &trace.records[i]);
    if (!y) return y.error();
    h = std::move(y).value();
  }
  trace.output = std::move(h);
  return trace;
}

Result<Matrix> Network::forward_layer(std::size_t i, const MatrixRef& h, Mode mode,
                                      const Vector* theta_in) const {
  return run_layer(i, h, mode, theta_in, nullptr);
}

Result<Matrix> Network::run_layer(std::size_t i, const MatrixRef& h, Mode mode,
                                  const Vector* theta_in,
                                  std::optional<digital_twin::SpikeRecord>* record) const {
  const Layer& layer = layers_.at(i);
  const Vector& theta = theta_in ? *theta_in : layer.theta;
  if (theta.size() != layer.theta.size()) {
    throw std::logic_error("Network::forward: θ of layer '" + layer.name + "' has the wrong size");
  }
  const Matrix in = layer_input(layer, h);
  if (layer.is_physical() && mode == Mode::kHardware) {
    ++hardware_calls_;
    if (record != nullptr && layer.backward_at_record) {
      auto r = on_device(layer.executor, [&] { return layer.device->spike_run(in, theta); });
      if (!r) {
        return drivers::Error{r.error().code, "layer '" + layer.name + "': " + r.error().message};
      }
      Matrix y = r.value().outputs;
      *record = std::move(r).value();
      return y;
    }
    auto y = on_device(layer.executor, [&] { return layer.device->forward(in, theta); });
    if (!y) {
      return drivers::Error{y.error().code, "layer '" + layer.name + "': " + y.error().message};
    }
    return std::move(y).value();
  }
  if (!layer.model) {
    throw std::logic_error("layer '" + layer.name + "' has no twin to run in twin mode");
  }
  return layer.model->forward(in, theta);
}

Result<Matrix> Network::settle_layer(std::size_t i, const MatrixRef& h,
                                     const digital_twin::SettleBoundary& boundary,
                                     bool warm_start) const {
  const Layer& layer = layers_.at(i);
  if (!layer.is_physical()) {
    throw std::logic_error("layer '" + layer.name + "' is digital: it has no device to settle");
  }
  const Matrix in = layer_input(layer, h);
  ++hardware_calls_;
  auto v = on_device(layer.executor,
                     [&] { return layer.device->settle(in, layer.theta, boundary, warm_start); });
  if (!v) return drivers::Error{v.error().code, "layer '" + layer.name + "': " + v.error().message};
  return std::move(v).value();
}

digital_twin::Cotangents Network::vjp_layer(std::size_t i, const MatrixRef& raw,
                                            const MatrixRef& y_bar) const {
  const Layer& layer = layers_.at(i);
  if (!layer.model) {
    throw std::logic_error("Network::backward: layer '" + layer.name + "' has no twin");
  }
  auto cot = layer.model->vjp(layer_input(layer, raw), layer.theta, y_bar);
  if (layer.is_physical()) {
    const auto& spec = layer.device->spec();
    cot.x_bar =
        (raw.array() < spec.input_min || raw.array() > spec.input_max).select(0.0, cot.x_bar);
  }
  return cot;
}

digital_twin::Cotangents Network::vjp_at_record(std::size_t i, const MatrixRef& raw,
                                                const digital_twin::SpikeRecord& record,
                                                const MatrixRef& y_bar) const {
  const Layer& layer = layers_.at(i);
  const auto* lif = dynamic_cast<const digital_twin::SpikingLifModel*>(layer.model.get());
  if (!lif || !layer.is_physical()) {
    throw std::logic_error("Network::backward: layer '" + layer.name +
                           "' has a spike record but no spiking twin to evaluate it");
  }
  // Spike times come from the data through a fixed encoding: x̄ is zero (as the twin's vjp).
  if (layer.spike_train_rule) {
    return lif->vjp_spike_train(layer_input(layer, raw), layer.theta, record, y_bar);
  }
  return lif->vjp_at_record(layer_input(layer, raw), layer.theta, record, y_bar);
}

std::vector<Vector> Network::backward(const Trace& trace, const MatrixRef& y_bar) const {
  if (trace.inputs.size() != layers_.size()) {
    throw std::logic_error("Network::backward: trace does not belong to this network");
  }
  std::vector<Vector> grads(layers_.size());
  Matrix g = y_bar;
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const bool measured = i < trace.records.size() && trace.records[i].has_value();
    auto cot = measured ? vjp_at_record(i, trace.inputs[i], *trace.records[i], g)
                        : vjp_layer(i, trace.inputs[i], g);
    grads[i] = std::move(cot.theta_bar);
    if (i == 0) break;
    g = std::move(cot.x_bar);
  }
  return grads;
}

}  // namespace pnn::training
