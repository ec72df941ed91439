#pragma once
// Shared pieces of the benchmarks (private to bench/). Each setup's benchmark lives in its own
// bench/src/<setup>_bench.cpp, is declared at the bottom of this header, and is listed once in
// entries() in benchmarks.cpp.
#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "pnn/bench/benchmarks.hpp"
#include "pnn/training/job.hpp"

namespace pnn::bench::detail {

double seconds_since(std::chrono::steady_clock::time_point t0);
/// CPU seconds this process has used so far, every thread (user + system).
double process_cpu_seconds();

template <class T>
T unwrap(drivers::Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r).value();
}

/// Runs a job without writing outputs, forwarding epoch progress to options.on_progress.
training::JobResult run_job_quietly(const training::JobConfig& config, const std::string& gap,
                                    const BenchOptions& options);

/// The PHYSICS.md JSON keys for a job's result: name, dataset, split, seed, gap (if not empty),
/// acc_pat_reality, acc_pat_twin, acc_insilico_reality, acc_twin, acc_digital, epochs, wall_s,
/// s_per_epoch_pat, threads (each where the job has the phase).
nlohmann::json job_record(const training::JobConfig& config, const training::JobResult& result,
                          const std::string& gap);

/// The PHYSICS.md oscillator PNN job (64 oscillators, then 64+10; logits = 3·q of the last 10)
/// on `dataset` at `gap`, devices seeded from `seed`.
training::JobConfig oscillator_job(const std::string& name, const std::string& dataset,
                                   const std::string& gap, int epochs, std::uint64_t seed,
                                   int image_side);

/// The training options every PAT benchmark shares: PAT with Adam at `learning_rate`, batch 32,
/// no per-epoch evaluation (the benchmark reports the final accuracies).
training::TrainOptions pat_options(double learning_rate, int epochs, std::uint64_t seed);
/// --compute for the oscillator benchmarks: "float32" sets the job's training.compute and the
/// simulated oscillators' compute option; "" and "float64" leave the job as it is. Throws
/// std::invalid_argument on anything else.
void apply_compute(training::JobConfig& c, const std::string& compute);

/// The hybrid network of the setup benchmarks on the 8×8 digits: affine 64→`hidden`,
/// `activation`, the physical layer (device `layer` at `address`: hidden in, hidden out), affine
/// →10. PAT with Adam at `learning_rate`, batch 32, the in-silico comparison from the same θ, no
/// calibration, and a 64-`hidden`-10 ReLU MLP as the digital reference of similar size.
training::JobConfig hybrid_digits_job(const std::string& name, const std::string& layer,
                                      const std::string& address, Index hidden,
                                      const std::string& activation, double learning_rate,
                                      int epochs, std::uint64_t seed);

// ---- setup benchmarks, one file each ----------------------------------------------------------

/// shg-digits (shg_bench.cpp): SHG hidden layer between digital layers, small and large gap.
std::vector<nlohmann::json> shg_digits(const BenchOptions& options);
/// spdnn-digits (spdnn_bench.cpp): 64-100-10 with the single-photon layer, one shot per inference.
std::vector<nlohmann::json> spdnn_digits(const BenchOptions& options);
/// The stno-seqdigits job (stno_bench.cpp): 64 STNOs, 8 periods of 8 inputs, affine →10, PAT
/// with Adam 0.1 for `epochs`, the in-silico comparison, device seeded from `seed`.
training::JobConfig stno_job(int epochs, std::uint64_t seed);
/// stno-seqdigits (stno_bench.cpp): STNO recurrent network on sequential digits, PAT on reality.
std::vector<nlohmann::json> stno_seqdigits(const BenchOptions& options);
/// mtj-rf-digits (mtj_rf_bench.cpp): MTJ RF synapse chains + STNO neurons as a hidden layer.
std::vector<nlohmann::json> mtj_rf_digits(const BenchOptions& options);
/// circuit-digits (circuit_bench.cpp): RLC-junction circuit as a hidden layer on digits.
std::vector<nlohmann::json> circuit_digits(const BenchOptions& options);
/// plate-digits (plate_bench.cpp): speaker-driven plate as a hidden layer on digits.
std::vector<nlohmann::json> plate_digits(const BenchOptions& options);

/// spsa-oscillator-digits (zeroth_order_bench.cpp): the oscillator network, large gap, no twin,
/// SPSA; accuracy on the hardware against device calls, and the in-silico baseline.
std::vector<nlohmann::json> spsa_oscillator_digits(const BenchOptions& options);
/// mgd-oscillator-digits (zeroth_order_bench.cpp): the same with MGD (CDMA code).
std::vector<nlohmann::json> mgd_oscillator_digits(const BenchOptions& options);

/// scff-digits (local_rules_bench.cpp): SCFF features + linear probe on digits; the optical-FF
/// arrangement (fixed simulated SHG layer) against the same digital network without it.
std::vector<nlohmann::json> scff_digits(const BenchOptions& options);
/// pc-digits (local_rules_bench.cpp): fixed-prediction PC vs backprop after one epoch, and the
/// accuracy of strict PC.
std::vector<nlohmann::json> pc_digits(const BenchOptions& options);

/// ep-resistive-digits (ep_bench.cpp): centred EP on the simulated resistive network, digits,
/// measured on the hardware; PAT on the same device for comparison; settle calls per sample.
std::vector<nlohmann::json> ep_resistive_digits(const BenchOptions& options);

/// learned-twin-oscillator (learned_twin_bench.cpp): large-gap oscillators with a twin fitted
/// from measured samples (grey box by default): NMSE, Jacobian cosine, PAT and in silico.
std::vector<nlohmann::json> learned_twin_oscillator(const BenchOptions& options);
/// learned-twin-shg: the shg-digits network with a black-box MLP twin of the SHG device.
std::vector<nlohmann::json> learned_twin_shg(const BenchOptions& options);
/// spin-node-stno: the stno-seqdigits job with a neural-ODE twin fitted from measured
/// trajectories: trajectory NMSE, Jacobian cosine, PAT and in silico on the device.
std::vector<nlohmann::json> spin_node_stno(const BenchOptions& options);
/// own-device-digits: a Python instrument served by pnn_device (no C++ twin), a black-box MLP
/// twin fitted from measurements, then PAT and in silico on it, measured on that device.
std::vector<nlohmann::json> own_device_digits(const BenchOptions& options);

/// frame-codec (wire_bench.cpp): frame encode + stream decode throughput (gbytes_per_s).
std::vector<nlohmann::json> frame_codec(const BenchOptions& options);
/// wire-overhead (wire_bench.cpp): a job over the frame protocol vs link=direct.
std::vector<nlohmann::json> wire_overhead(const BenchOptions& options);

/// scaling (scaling_bench.cpp): one PAT and one in-silico epoch of the oscillator setup for N = 64
/// … 1024 at batch 32 and 256: GFLOP/s against an Eigen GEMM probe, and the exponent in N.
std::vector<nlohmann::json> scaling(const BenchOptions& options);

/// spiking-yinyang (spiking_bench.cpp): the analog LIF chip on Yin-Yang, PAT vs in silico.
std::vector<nlohmann::json> spiking_yinyang(const BenchOptions& options);
/// spiking-digits (spiking_bench.cpp): the chip 32-120-10 on the 8×4-pooled digits, surrogate
/// gradients and the spike-train-level rule side by side.
std::vector<nlohmann::json> spiking_digits(const BenchOptions& options);
// ---- the daemon (daemon_rpc_bench.cpp, daemon_job_bench.cpp) ---------------------------------

/// rpc-overhead: Forward round trip of one 784-float sample on sim://null vs a bare echo.
std::vector<nlohmann::json> rpc_overhead(const BenchOptions& options);
/// forward-throughput: batch-256 Forward on 64 oscillators through the daemon vs in-process.
std::vector<nlohmann::json> forward_throughput(const BenchOptions& options);
/// daemon-job: configs/jobs/oscillator-digits.yaml through pnnd (SubmitJob) vs training::run_job.
std::vector<nlohmann::json> daemon_job(const BenchOptions& options);
/// daemon-rss: resident memory of an idle pnnd started with configs/daemon/lab.yaml.
std::vector<nlohmann::json> daemon_rss(const BenchOptions& options);
/// dashboard-overhead (dashboard_bench.cpp): forward-throughput with the dashboard open in a
/// headless browser and a live job, against the same without the dashboard.
std::vector<nlohmann::json> dashboard_overhead(const BenchOptions& options);
/// dashboard-paint: first paint of a 10,000-point run's page in headless Chromium.
std::vector<nlohmann::json> dashboard_paint(const BenchOptions& options);
/// soak (soak_bench.cpp): the job through pnnd quiet, then under hostile clients: result, RSS.
std::vector<nlohmann::json> soak(const BenchOptions& options);

}  // namespace pnn::bench::detail
