#pragma once
/// A network of physical and digital layers, run either on the hardware (in situ) or on the
/// twins (in silico), with a backward pass through the twins at the recorded layer inputs.
#include <optional>
#include <string>
#include <vector>

#include "pnn/digital_twin/model.hpp"
#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/training/device_executor.hpp"

namespace pnn::training {

using drivers::Result;

/// One stage of the network. A physical layer runs `device` in hardware mode and its twin
/// `model` in twin mode; a digital layer always runs `model`. A physical layer may have no twin
/// (`model` null): only twin-free rules (forward on the hardware only) can train it.
struct Layer {
  std::string name;
  digital_twin::ModelPtr model;              ///< digital model, or the physical layer's twin (may be null)
  drivers::PhysicalSystem* device = nullptr;  ///< not owned; must outlive the network
  Vector theta;                              ///< trainable parameters
  Vector theta_min, theta_max;               ///< box the optimizer projects θ into
  DeviceExecutor executor;                   ///< where `device`'s calls run (empty: here)
  /// A physical layer whose device records spikes (PhysicalSystem::has_spike_run) and whose twin is
  /// a SpikingLifModel: its hardware-mode forward is a spike_run, and backward evaluates the
  /// twin at the measured record (SpikingLifModel::vjp_at_record, the hxtorch pattern). Set by
  /// add_physical where possible; false keeps the twin's own activity in the backward.
  bool backward_at_record = false;
  /// With backward_at_record: the spike-train-level rule (SpikingLifModel::vjp_spike_train) in
  /// place of surrogate BPTT at the record.
  bool spike_train_rule = false;
  bool is_physical() const { return device != nullptr; }
  bool has_model() const { return model != nullptr; }
  Index num_inputs() const;
  Index num_outputs() const;
  /// The twin's or model's name, or the device's setup kind for a twin-free layer.
  std::string kind() const;
};

enum class Mode { kHardware, kTwin };

/// What a forward pass recorded: the input each layer actually received (measured, for physical
/// layers in hardware mode) and the final output.
struct Trace {
  std::vector<Matrix> inputs;
  Matrix output;
  /// Per layer: the device's measured spike record where the layer ran as a spike_run (a
  /// physical layer with backward_at_record in hardware mode), else empty.
  std::vector<std::optional<digital_twin::SpikeRecord>> records;
};

class Network {
 public:
  /// A digital layer; θ unbounded.
  void add_digital(std::string name, digital_twin::ModelPtr model, Vector theta);
  /// A physical layer: `twin` must match the device's sizes, or be null for a layer without a
  /// twin (its θ then comes from the caller: e.g. the datasheet's initialisation recipe); θ
  /// starts clipped to the hard limits.
  /// Inputs are clipped to the device's actuator range before they are sent (saturation, with
  /// zero gradient outside), so training never asks for an out-of-range drive.
  void add_physical(std::string name, drivers::PhysicalSystem& device, digital_twin::ModelPtr twin,
                    Vector theta, DeviceExecutor executor = {});

  std::vector<Layer>& layers() { return layers_; }
  const std::vector<Layer>& layers() const { return layers_; }
  Index num_inputs() const;
  Index num_outputs() const;
  Index num_params() const;

  /// Runs the batch through every layer. Hardware-mode errors (device faults, limits) are
  /// returned as they are, naming the layer. Twin mode needs every layer to have a model
  /// (std::logic_error otherwise: rules check this before they run).
  Result<Trace> forward(const MatrixRef& x, Mode mode) const;
  /// The same with the parameters `thetas` (one vector per layer, sizes as the layers' θ) in
  /// place of the layers' own; the caller keeps them within the hard limits (the device refuses
  /// anything else). For rules that evaluate perturbed θ.
  Result<Trace> forward(const MatrixRef& x, Mode mode, const std::vector<Vector>& thetas) const;
  /// Parameter cotangents per layer, from each layer's twin/model `vjp` evaluated at the
  /// recorded inputs (PAT when the trace came from the hardware), or at the layer's measured
  /// spike record where the trace holds one. Every layer needs a model.
  std::vector<Vector> backward(const Trace& trace, const MatrixRef& y_bar) const;

  /// Layer `i` alone on the input `h` (batch × its inputs), with θ = `theta` (the layer's own
  /// if null): on its device in hardware mode (counted in `hardware_calls`; a fault is returned
  /// naming the layer), on its model otherwise. A physical layer's input is clipped to the
  /// actuator range as in `forward`. For layer-local rules (predictive coding, forward-forward).
  Result<Matrix> forward_layer(std::size_t i, const MatrixRef& h, Mode mode,
                               const Vector* theta = nullptr) const;
  /// The cotangents of layer `i`'s model (the twin of a physical layer) at the unclipped input
  /// `h` with the layer's θ: x̄ is zero where a physical layer's input was clipped. The layer
  /// needs a model (std::logic_error otherwise).
  digital_twin::Cotangents vjp_layer(std::size_t i, const MatrixRef& h,
                                     const MatrixRef& y_bar) const;

  /// The cotangents of layer `i`'s spiking twin at the device's measured `record` of input `h`
  /// (SpikingLifModel::vjp_at_record). std::logic_error unless the layer is physical with a
  /// spiking twin.
  digital_twin::Cotangents vjp_at_record(std::size_t i, const MatrixRef& h,
                                         const digital_twin::SpikeRecord& record,
                                         const MatrixRef& y_bar) const;
  /// Layer `i`'s device settles on `h` (clipped to the actuator range as in `forward`) with the
  /// layer's θ (PhysicalSystem::settle), counted in `hardware_calls`; a fault is returned naming
  /// the layer. The layer must be physical (std::logic_error otherwise).
  Result<Matrix> settle_layer(std::size_t i, const MatrixRef& h,
                              const digital_twin::SettleBoundary& boundary, bool warm_start) const;
  /// The layers' θ, in order.
  std::vector<Vector> thetas() const;
  /// Device forward calls made through this network so far (one per physical layer per
  /// hardware-mode forward, whether it succeeded or not). Not synchronised: one thread drives a
  /// network.
  std::int64_t hardware_calls() const { return hardware_calls_; }

 private:
  Matrix layer_input(const Layer& layer, const Matrix& x) const;
  // forward_layer, and with `record` non-null a layer with backward_at_record in hardware mode
  // runs as a spike_run and leaves its record there.
  Result<Matrix> run_layer(std::size_t i, const MatrixRef& h, Mode mode, const Vector* theta,
                           std::optional<digital_twin::SpikeRecord>* record) const;
  std::vector<Layer> layers_;
  mutable std::int64_t hardware_calls_ = 0;
};

}  // namespace pnn::training
