// scaling: one PAT epoch and one in-silico epoch of the oscillator setup against its size N, at
// two batch sizes, with the achieved GFLOP/s beside an Eigen GEMM probe run in the same process
// (in float with --compute float32, against which that run is measured).
//
// The network is the second layer of pat-oscillator-digits at size N: the 64 pixels, padded with
// N − 64 oscillators at rest, one sim://mechanical-oscillators device of N (large gap), logits =
// 3·q of the last 10. The arithmetic counted is the GEMMs of the RK4 stages, which dominate from
// N ≈ 64 on (everything else is O(B·N) or O(N²) per batch):
//   forward  (reality or twin): steps × 4 stages × (B×N)·(N×N)      = 8·S·B·N² flop
//   twin vjp: its forward sweep again + per stage Ā += sᵀ·ḡ, ḡ·Aᵀ     = 24·S·B·N² flop
// so 32·S·B·N² per batch for either rule (PAT: the reality's forward + the twin's vjp; in silico:
// the twin's forward + vjp), S = 5 steps.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "bench_common.hpp"
#include "pnn/digital_twin/parallel.hpp"
#include "pnn/training/datasets.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRk4Steps = 5;  // OscillatorConfig's default, which the sim device uses

struct GemmProbe {
  double gflops_all = 0.0;  ///< every pool thread running its own GEMM
  double gflops_one = 0.0;  ///< one thread
};

/// GFLOP/s of C = A·B (m×k by k×n, in the precision the job computes in) for about `seconds`, on
/// `threads` threads at once, each with its own matrices (the shape a batch shard of the
/// oscillator model multiplies).
template <class Scalar>
double gemm_gflops_in(Index m, Index k, Index n, int threads, double seconds) {
  using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  std::vector<double> rates(static_cast<std::size_t>(threads), 0.0);
  digital_twin::parallel_for(static_cast<std::size_t>(threads), [&](std::size_t t) {
    const M a = M::Random(m, k), b = M::Random(k, n);
    M c(m, n);
    c.noalias() = a * b;  // warm-up
    long reps = 0;
    const auto t0 = Clock::now();
    double elapsed = 0.0;
    do {
      c.noalias() = a * b;
      ++reps;
      elapsed = seconds_since(t0);
    } while (elapsed < seconds);
    rates[t] = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) *
               static_cast<double>(reps) / elapsed / 1e9;
  });
  double sum = 0.0;
  for (double r : rates) sum += r;
  return sum;
}

double gemm_gflops(bool float32, Index m, Index k, Index n, int threads, double seconds) {
  return float32 ? gemm_gflops_in<float>(m, k, n, threads, seconds)
                 : gemm_gflops_in<double>(m, k, n, threads, seconds);
}

/// Least-squares slope of log(y) against log(x).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double lx = std::log(x[i]), ly = std::log(y[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

training::JobConfig scaling_job(Index n, Index batch, std::uint64_t seed) {
  using training::LayerSpec;
  training::JobConfig c;
  c.source = "scaling";
  c.name = "scaling";
  c.seed = seed;
  c.dataset = "digits";
  c.devices = {{"osc", "sim://mechanical-oscillators?gap=large&n=" + std::to_string(n) +
                           "&seed=" + std::to_string(2 * seed + 1)}};
  if (n > 64) c.network.push_back({LayerSpec::Kind::kPad, "", n - 64});
  c.network.push_back({LayerSpec::Kind::kPhysical, "osc"});
  c.network.push_back({LayerSpec::Kind::kSlice, "", 10, n - 10, 3.0});
  c.training = pat_options(3e-3, 1, seed);
  c.training.batch_size = batch;
  c.calibrate = false;
  c.compare_in_silico = true;
  c.digital_hidden = 0;
  return c;
}

}  // namespace

std::vector<json> scaling(const BenchOptions& options) {
  const int threads = digital_twin::num_threads();
  const std::vector<Index> sizes = options.sizes.empty()
                                        ? std::vector<Index>{64, 128, 256, 512, 1024}
                                        : std::vector<Index>(options.sizes.begin(), options.sizes.end());
  const std::vector<Index> batches = options.batches.empty()
                                         ? std::vector<Index>{32, 256}
                                         : std::vector<Index>(options.batches.begin(), options.batches.end());
  const Index train_samples = training::load_digits().train.size();

  // The peak this machine reaches with Eigen's GEMM, on every thread at once and on one; the
  // highest of the probes taken before, between and after the sizes is the one reported.
  GemmProbe peak;
  const bool f32 = options.compute == "float32";
  peak.gflops_all = gemm_gflops(f32, 512, 512, 512, threads, 1.0);
  peak.gflops_one = gemm_gflops(f32, 512, 512, 512, 1, 1.0);
  if (options.on_progress) {
    options.on_progress("GEMM probe 512³: " + std::to_string(peak.gflops_all) + " GFLOP/s on " +
                        std::to_string(threads) + " threads, " + std::to_string(peak.gflops_one) +
                        " on one");
  }

  std::vector<json> out;
  json summary{{"name", "scaling"}, {"threads", threads}, {"seed", options.seed},
               {"gemm_peak_gflops_1thread", peak.gflops_one},
               {"rk4_steps", kRk4Steps},
               {"compute", options.compute.empty() ? "float64" : options.compute}};
  for (const Index batch : batches) {
    std::vector<double> ns, t_pat, t_insilico;
    for (const Index n : sizes) {
      training::JobConfig c = scaling_job(n, batch, options.seed);
      apply_compute(c, options.compute);
      const training::JobResult r = run_job_quietly(c, "", options);
      const auto* pat = r.phase("pat");
      const auto* insilico = r.phase("in-silico");
      if (pat == nullptr || insilico == nullptr || pat->history.empty() || insilico->history.empty()) {
        throw std::runtime_error("scaling: the job did not run both phases");
      }
      // One epoch covers the training set once (the last batch may be short).
      const double train = static_cast<double>(train_samples);
      const double flop = 32.0 * kRk4Steps * train * static_cast<double>(n) * static_cast<double>(n);
      // The same-shape GEMM as one batch shard multiplies: (B/threads × N)·(N × N).
      const Index shard = std::max<Index>(1, batch / threads);
      const double shape_peak = gemm_gflops(f32, shard, n, n, threads, 0.3);
      const double s_pat = pat->history.front().seconds;
      const double s_insilico = insilico->history.front().seconds;
      json j{{"name", "scaling"}, {"n", n}, {"batch", batch}, {"threads", threads},
             {"train_samples", train_samples}, {"gflop_per_epoch", flop / 1e9},
             {"s_epoch_pat", s_pat}, {"s_epoch_insilico", s_insilico},
             {"gflops_pat", flop / s_pat / 1e9}, {"gflops_insilico", flop / s_insilico / 1e9},
             {"gemm_same_shape_gflops", shape_peak}};
      if (options.on_progress) options.on_progress(j.dump());
      // Another probe between sizes: on a shared machine the highest one is the machine's.
      peak.gflops_all = std::max(peak.gflops_all, gemm_gflops(f32, 512, 512, 512, threads, 0.5));
      out.push_back(j);
      ns.push_back(static_cast<double>(n));
      t_pat.push_back(s_pat);
      t_insilico.push_back(s_insilico);
    }
    // Exponent of time against N over every size and over N ≥ 256 (where the GEMMs dominate).
    std::vector<double> big_n, big_pat, big_insilico;
    for (std::size_t i = 0; i < ns.size(); ++i) {
      if (ns[i] < 256) continue;
      big_n.push_back(ns[i]);
      big_pat.push_back(t_pat[i]);
      big_insilico.push_back(t_insilico[i]);
    }
    const std::string b = std::to_string(batch);
    if (ns.size() >= 2) {
      summary["exponent_pat_b" + b] = loglog_slope(ns, t_pat);
      summary["exponent_insilico_b" + b] = loglog_slope(ns, t_insilico);
    }
    if (big_n.size() >= 2) {
      summary["exponent_pat_b" + b + "_n256plus"] = loglog_slope(big_n, big_pat);
      summary["exponent_insilico_b" + b + "_n256plus"] = loglog_slope(big_n, big_insilico);
    }
  }
  for (auto& j : out) {
    j["frac_peak_pat"] = j["gflops_pat"].get<double>() / peak.gflops_all;
    j["frac_peak_insilico"] = j["gflops_insilico"].get<double>() / peak.gflops_all;
  }
  summary["gemm_peak_gflops"] = peak.gflops_all;
  out.push_back(summary);
  return out;
}

}  // namespace pnn::bench::detail
