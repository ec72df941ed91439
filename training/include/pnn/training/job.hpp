#pragma once
/// A training job: the YAML config a user writes (`pnnctl train CONFIG.yaml`, a pnnd job) and
/// the runner that opens the devices, calibrates the twins, trains with the configured learning
/// rule (PAT by default), trains the in-silico and digital baselines for comparison, and writes
/// the checkpoint and the plot.
/// docs/config.md is the reference of every key.
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "pnn/training/datasets.hpp"
#include "pnn/training/spiking_fit.hpp"
#include "pnn/training/trainer.hpp"

namespace pnn::training {

/// A config problem. The message names the file, the line, the key and the fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LayerSpec {
  enum class Kind { kPhysical, kPad, kSlice, kAffine, kActivation, kDuplicate };
  Kind kind = Kind::kPhysical;
  std::string device;      ///< physical: device name from `devices`
  Index count = 0;         ///< pad: zeros; slice: count; affine: outputs
  Index first = 0;         ///< slice
  double gain = 1.0;       ///< slice
  std::string activation;  ///< activation: relu | tanh | sin | sigmoid
  bool twin = true;        ///< physical: false = the layer has no twin (twin-free rules only)
  /// physical, `twin: learned:<id>`: a learned twin from a pnnd run store (pnnd resolves it
  /// into JobOptions::twins; a local job refuses it). 0: none.
  std::uint64_t learned_twin = 0;
  /// physical, `twin: {fit: FAMILY, samples: N, repeats: R}`: fit a learned twin of the device
  /// when the job starts (learned_twin.hpp), and train with it. Empty family: none.
  std::string fit_family;
  Index fit_samples = 4096;
  int fit_repeats = 1;
  /// `twin: {fit: ..., refit_on_drift: B}`: after every epoch of the main phase, the twin is
  /// checked against 256 fresh measurements at the layer's current θ, and refitted (as at the
  /// start, new samples) when its NMSE exceeds B. 0: never.
  double refit_on_drift = 0.0;
  /// physical, `backward: measured | spike-train | twin`: measured (the default) evaluates a
  /// spiking twin's surrogate BPTT at the chip's recorded spikes and traces (Network's
  /// backward_at_record, where the device records spikes); spike-train uses the spike-train-level
  /// rule at that record instead; twin keeps the twin's own activity. Other setups: no
  /// difference.
  bool backward_at_record = true;
  bool spike_train_rule = false;
};

struct DeviceEntry {
  std::string name;
  std::string address;
};

struct JobConfig {
  std::string source;  ///< file the config came from (for messages)
  std::string name = "pnn-job";
  std::uint64_t seed = 0;
  std::string dataset = "digits";
  FashionMnistOptions data_options;
  std::vector<DeviceEntry> devices;
  std::vector<LayerSpec> network;
  TrainOptions training;
  bool calibrate = false;
  Index calibration_samples = 256;
  bool compare_in_silico = true;
  /// training.compute: the arithmetic of the physical layers' twins (forward and vjp). A twin
  /// without a float32 kernel stays float64, and the job's log says so.
  digital_twin::Precision compute = digital_twin::Precision::kFloat64;
  Index digital_hidden = 0;  ///< > 0: train a digital MLP inputs-hidden-classes as a baseline
  std::string output_dir = "runs/pnn-job";
};

/// Throws ConfigError (file missing, YAML syntax, unknown key, wrong type or value).
JobConfig load_job_config(const std::string& path);
JobConfig parse_job_config(const std::string& yaml_text, const std::string& source_name);

struct CalibrationReport {
  std::string layer;
  std::string serial;
  double mse_before = 0.0;  ///< the twin's outputs against the device's, before the fit
  double mse_after = 0.0;
  Vector phi;
  /// A spiking layer (a spiking-LIF twin of a device with spike records) is fitted by the mock fit (spiking_fit.hpp), whose
  /// report this is; mse_* are then its output_mse_*.
  std::optional<MockFitReport> mock_fit;
};

/// Fits the twins of every physical layer to measurements: `probe` is run through the network on
/// the hardware, and each physical layer is measured at its current θ and at two perturbed θ
/// (within limits) on the inputs it actually receives. Each layer's model becomes the fitted twin.
/// A spiking layer (a spiking-LIF twin of a device with spike records) gets the mock fit instead: the probe it receives run
/// four times at its θ, its per-neuron corrections fitted.
Result<std::vector<CalibrationReport>> calibrate_twins(Network& network, const MatrixRef& probe,
                                                       std::uint64_t seed);

struct PhaseResult {
  std::string phase;  ///< the rule's name ("pat", "spsa", ...), "in-silico", "digital"
  std::vector<EpochStats> history;
  double acc_hardware = -1.0;  ///< test accuracy on the (simulated) hardware; -1 for digital
  double acc_twin = -1.0;      ///< on the twins (digital: the MLP itself); -1 without twins
  double seconds = 0.0;
  std::int64_t hardware_calls = 0;  ///< device calls of the training (EpochStats::hardware_calls)
  std::vector<Vector> thetas;       ///< the trained parameters, per layer
};

struct JobResult {
  std::string name;
  std::string dataset;
  std::string split;
  std::vector<std::string> device_serials;
  std::vector<CalibrationReport> calibration;
  /// The learned twins the job trained with, by device: source ("learned:4", "fit:residual")
  /// and data hash, as its checkpoints record them.
  std::map<std::string, std::pair<std::string, std::string>> twins;
  /// Refits on drift (twin: {refit_on_drift}): "osc-a after epoch 3: NMSE 0.08 > 0.05".
  std::vector<std::string> refits;
  std::vector<PhaseResult> phases;
  std::string checkpoint_path;
  std::string plot_path;
  int threads = 1;
  std::string compute = "float64";  ///< JobConfig::compute, as its name
  double wall_seconds = 0.0;
  const PhaseResult* phase(const std::string& name) const;
};

struct JobCallbacks {
  std::function<void(const std::string& message)> on_log;
  std::function<void(const std::string& phase, int epoch, int epochs, Index batch, Index num_batches, double loss)> on_batch;
  std::function<void(const std::string& phase, const EpochStats& stats, int epochs)> on_epoch;
  std::function<bool()> stop_requested;
};

struct JobOptions {
  std::optional<std::string> resume_checkpoint;  ///< continue PAT from this checkpoint
  bool write_outputs = true;                     ///< checkpoint + plot into output_dir
  /// Devices owned by the caller (e.g. the daemon), by the names the config's `devices` use.
  /// When set, the job does not open devices from addresses: it uses these, which must be ACTIVE,
  /// and leaves their lifecycle to the owner (no configure/activate/shutdown).
  std::map<std::string, drivers::PhysicalSystem*> external_devices;
  /// Where each external device's calls run (by the same names; missing: the job's thread).
  std::map<std::string, DeviceExecutor> device_executors;
  /// Opens the device at an address in place of drivers::make_physical_system, e.g. pnnctl's
  /// pnnd://DAEMON/DEVICE (a device of another daemon, through the lab registry). Returns nullptr
  /// for an address it leaves to make_physical_system; throws std::invalid_argument (a config
  /// error naming the device) for one it cannot open.
  std::function<drivers::PhysicalSystemPtr(const std::string& address)> open_device;
  /// Twins to use in place of the datasheet's nominal twins, by device name (e.g. learned twins,
  /// learned_twin.hpp); sizes must match the device. θ still starts from the nominal recipe.
  std::map<std::string, digital_twin::ModelPtr> twins;
  /// What each of `twins` is, for the checkpoint (metadata pnn.twin.<device>.source and
  /// .data_hash): e.g. {"learned:4", "<hash>"}.
  std::map<std::string, std::pair<std::string, std::string>> twin_provenance;
};

/// Runs the whole job. Config problems throw ConfigError/DatasetError, and so does a rule the
/// network's layers cannot provide (before any device is configured); device faults during the
/// run come back as the error of the Result (the last checkpoint stays valid).
Result<JobResult> run_job(const JobConfig& config, const JobCallbacks& callbacks = {},
                          const JobOptions& options = {});

}  // namespace pnn::training
