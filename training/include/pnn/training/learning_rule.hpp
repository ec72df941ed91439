#pragma once
/// Learning rules: how one batch becomes a parameter update (docs/learning-rules.md).
///
/// A rule takes the network and a batch, makes the device (or twin) calls it needs through the
/// network, and returns a gradient or gradient estimate per layer; the `Trainer`'s optimizer
/// applies it and projects θ into the hard limits. A rule never changes θ itself.
///
///   rule        needs of a physical layer      needs of a digital layer   calls per update
///   pat         hardware forward + twin vjp    model forward + vjp        1 forward
///   in-silico   twin forward + vjp             model forward + vjp        0
///   spsa        hardware forward               model forward              2·M forwards
///   mgd         hardware forward               model forward              τ_θ forwards
///   pc          hardware forward + twin vjp    model forward + vjp        1 (fixed) or
///                                                                         1 + T·P_latent (strict)
///   ff, scff    hardware forward (+ twin vjp   model forward + vjp        1 + 2 (ff) or 1 (scff)
///               if trained)                                               per physical feature
///               layer
///   probe       hardware forward               model forward + vjp        1
///   ep          settle (energy-based setup)    — (refused)                1 free + 1 (positive,
///                                                                         negative) or 2
///                                                                         (centred) nudged settles
///   coupled-    settle (energy-based setup)    — (refused)                1 free + 1 clamped
///   learning                                                              settle
///
/// (one network forward = one device call per physical layer). Each rule declares what it needs of
/// a layer; `check_rule_fits` refuses a network whose layers cannot provide it, before anything
/// runs. A rule's own state (step counter, integrators, position of its random stream) is a
/// `RuleState`, which checkpoints carry, so a resumed run continues the same sequence.
///
/// Thread rule: a rule object is used by one training loop (one thread) at a time.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "pnn/training/checkpoint.hpp"
#include "pnn/training/network.hpp"
#include "pnn/training/optim.hpp"

namespace pnn::training {

// ---- what layers provide and rules need -------------------------------------------------------

/// What a layer can do for a rule (bit flags).
enum Capability : unsigned {
  kHardwareForward = 1u << 0,  ///< run forward on its device (physical layers)
  kModelForward = 1u << 1,     ///< its model's forward: a digital layer's model or the twin
  kModelVjp = 1u << 2,         ///< its model's vjp (the same model)
  kSettle = 1u << 3,           ///< settle to equilibrium on its device (energy-based setups)
};
using Capabilities = unsigned;

/// A layer as a rule sees it: whether it is physical and what it provides.
struct LayerSummary {
  std::string name;
  bool physical = false;
  Capabilities provides = 0;
};
/// Physical layers provide a hardware forward, and a twin's forward and vjp if they have a twin,
/// and settle if their device is an energy-based setup (spec().settle_nodes > 0 and a datasheet
/// energy structure: the resistive network); digital layers provide their model's forward and vjp.
LayerSummary summarize(const Layer& layer);
/// Whether `device` provides kSettle: an energy-based setup (spec().settle_nodes > 0) whose
/// datasheet energy structure (the resistive network, its nominal twin) the rules can read.
bool can_settle(const drivers::PhysicalSystem& device);
std::vector<LayerSummary> summarize(const Network& network);
/// "hardware forward, twin vjp": the capabilities in words (twin or model by `physical`).
std::string describe(Capabilities c, bool physical);

// ---- one batch --------------------------------------------------------------------------------

/// One training batch and the loss the rule minimises on it.
struct Batch {
  Matrix x;                ///< batch × network inputs
  Eigen::VectorXi labels;  ///< class of each row
  int num_classes = 0;
  LossKind loss = LossKind::kCrossEntropy;
  /// The loss of `output` (batch × classes) against the labels, with ∂loss/∂output.
  LossValue evaluate(const MatrixRef& output) const;
};

/// What one rule step returns.
struct RuleStep {
  /// Gradient (PAT, in-silico) or gradient estimate (zeroth-order) per layer, in network order,
  /// for the optimizer. Absent: no update after this batch (MGD between updates).
  std::optional<std::vector<Vector>> grads;
  /// The optimizer's learning rate for this update when the rule schedules it (SPSA's a_k);
  /// absent: the optimizer's own.
  std::optional<double> learning_rate;
  double loss = 0.0;  ///< the batch's loss as the rule measured it (mean over rows)
  Matrix output;      ///< the outputs the batch's training accuracy is computed from
};

/// A rule's state for checkpoints (the checkpoint's `rule` record): `kind` names the rule
/// ("" = the rule keeps no state), `step` its counter, `slots` its vectors (integrators,
/// baselines; each rule documents its layout).
using RuleState = OptimizerState;

/// A rule asked of a network that cannot provide it, an unknown rule or a bad option. The message
/// names the layer or option, what is missing and the fix.
class RuleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class LearningRule {
 public:
  virtual ~LearningRule() = default;
  virtual std::string name() const = 0;
  /// What the rule needs of a physical (true) or digital (false) layer.
  virtual Capabilities needs(bool physical) const = 0;
  /// Where the rule's forwards run, and so where its training accuracy is measured.
  virtual Mode mode() const = 0;
  /// One batch: the device/twin calls the rule needs, through `network` (with θ as they are in
  /// the network; the rule may evaluate other θ through `Network::forward(x, mode, thetas)`).
  /// Device faults come back as the error; a failed step changes neither θ nor the rule's
  /// state, so nothing is counted twice.
  virtual Result<RuleStep> step(const Network& network, const Batch& batch) = 0;
  /// Throws RuleError if the network's arrangement does not suit the rule (forward-forward: a
  /// readout at the end, the layer that builds its samples); called by `Trainer` before any
  /// call reaches a device. Default: every arrangement suits.
  virtual void check_network(const Network& network) const;
  virtual RuleState state() const { return {}; }
  /// Restores `state()`. Throws RuleError if it belongs to another rule or does not fit.
  virtual void set_state(const RuleState& state);
};

/// Throws RuleError naming each layer that lacks what `rule` needs, what it lacks, and the fix
/// (e.g. "layer 'osc-a' (physical, no twin) cannot provide a twin vjp, which rule 'pat' needs").
void check_rule_fits(const LearningRule& rule, const std::vector<LayerSummary>& layers);

// ---- the rules and their options ----------------------------------------------------------------

/// Physics-aware training: hardware forward, twin vjp at the measured inputs.
struct PatConfig {};
/// Training on the twins alone (deployed on the hardware afterwards).
struct InSilicoConfig {};

/// Simultaneous-perturbation stochastic approximation (Spall 1992, 1998): per update, M
/// two-sided estimates with Rademacher ±1 perturbations Δ,
///   ĝ = mean over m of (L(θ⁺) − L(θ⁻)) (θ⁺ − θ⁻) / (4 c_k²),  θ^± = clip(θ ± c_k Δ),
/// gains a_k = a / (k + 1 + A)^α (the optimizer's learning rate of update k) and
/// c_k = c / (k + 1)^γ. Clipping to the hard limits happens before the θ are sent; with no clip,
/// ĝ_i = (L⁺ − L⁻) / (2 c_k Δ_i), Spall's estimate.
struct SpsaConfig {
  // Defaults: the gains that train the oscillator network of spsa-oscillator-digits with plain
  // SGD (docs/learning-rules.md); another loss scale or θ range wants its own.
  double a = 8.0;
  double c = 0.2;     ///< in θ units; keep it well above the device's θ resolution and noise
  double A = 1000.0;  ///< stability constant (Spall: ~10 % of the planned updates)
  double alpha = 0.602;
  double gamma = 0.101;
  int perturbations = 1;  ///< M: two-sided estimates averaged per update
};

/// Multiplexed gradient descent (McCaughan et al., APL Machine Learning 1, 026118, 2023): every
/// time step the network runs with all parameters perturbed at once, θ + θ̃(t), by a code:
///   cdma  θ̃_i(t) = Δθ·b_i(t), b_i(t) random ±1 (σ² = Δθ²);
///   fdma  θ̃_i(t) = Δθ·sin(2π k_i t / T), k_i = i + 1, T = 2P + 2 (distinct frequencies,
///         orthogonal over T steps; σ² = Δθ²/2);
///   tdma  one parameter at a time, (t mod P), is perturbed by ±Δθ, random sign (σ² = Δθ²/P).
/// The cost C(t) is high-passed against a low-passed baseline: C̃(t) = C(t) − C_lp(t−1),
/// C_lp(t) = C_lp(t−1) + (C(t) − C_lp(t−1))/τ_hp (the paper's filter, running across batches;
/// the very first step only starts the baseline). G += C̃·θ̃/(σ²·g) with θ̃ the perturbation
/// actually sent (after clipping) and g the filter's gain at the code's frequency (1 for the
/// random cdma/tdma codes; Re H(ω_i) for fdma, so the estimate stays unbiased). Every τ_θ time
/// steps the optimizer gets G/τ_θ and G restarts. A batch is presented for τ_x time steps (a
/// new batch adds cost changes that are noise to G); τ_θ is a multiple of τ_x.
struct MgdConfig {
  enum class Code { kCdma, kFdma, kTdma };
  // Defaults: those of mgd-oscillator-digits (with SGD at learning rate 0.1).
  Code code = Code::kCdma;
  double amplitude = 0.2;  ///< Δθ, in θ units
  int tau_x = 8;           ///< time steps per batch
  int tau_theta = 8;       ///< time steps per update (a multiple of tau_x)
  double tau_hp = 1.0;     ///< baseline low-pass time constant, in time steps (≥ 1)
};
const char* to_string(MgdConfig::Code code);

/// Predictive coding (Rosenbaum, PLoS ONE 17, e0266102, 2022; Whittington & Bogacz 2017). Each
/// layer's output is a latent value v_i (v_{-1} = x) with prediction μ_i = f_i(v_{i-1}) and error
/// ε_i = μ_i − v_i; the output error is ε_out = ∂loss/∂μ_out. Inference runs T steps of gradient
/// descent on the energy F = loss(μ_out) + Σ_i ½‖v_i − μ_i‖²,
///   v_i ← v_i − η (−ε_i + J_{i+1}ᵀ ε_{i+1}),   J_{i+1} = ∂f_{i+1}/∂v_i (a layer's model or twin
///   vjp),
/// all latents at once from the previous step's errors (each layer needs only its neighbours).
/// Then every layer's update is local: ∂F/∂θ_i = (∂f_i/∂θ_i)ᵀ ε_i, at its own input.
///   fixed   (fixed-prediction assumption) μ_i and the Jacobians stay at the feed-forward pass
///           (measured on the hardware for physical layers): with η = 1 and T ≥ layers − 1 the
///           errors are backprop's δ_i and the update equals PAT's (in-silico's for a network
///           without physical layers) up to rounding.
///   strict  μ_i = f_i(v_{i-1}) recomputed from the current latents every step: a physical layer
///           whose input is a latent runs on its device each step (its twin gives J and ∂f/∂θ at
///           the sent input). Approximates backprop; Rosenbaum: η = 0.1, T = 20.
struct PcConfig {
  enum class Variant { kFixedPrediction, kStrict };
  Variant variant = Variant::kFixedPrediction;
  int iterations = 0;           ///< T; 0 = the number of layers − 1 (the exact minimum for fixed)
  double inference_rate = 1.0;  ///< η, in (0, 1]
};
const char* to_string(PcConfig::Variant variant);

/// Forward-forward training (Hinton 2022) and self-contrastive forward-forward (SCFF; Chen et
/// al., Nature Communications 16, 5978, 2025): layer-local and forward-only.
/// The network is: a prefix of layers that are not trained (data wiring, a fixed physical layer:
/// the optical-FF arrangement of Oguz et al., Optica 10, 1, 2023), the layer that builds the
/// samples, the feature blocks, and a readout of the last `head` layers (digital).
/// Each feature block is one trained layer (digital, or physical with `train_physical`, through
/// its twin's vjp at its measured input) with the parameter-free layers after it; its goodness is
/// G = Σ_units a² of its output a, and its local loss, with U the block's output units,
///   softplus(−(G⁺ − τU)) + softplus(G⁻ − τU),   averaged over the batch,
/// pushes positive samples above the threshold and negative ones below; no gradient crosses a
/// block boundary (each block's input is a constant to it).
///   ff     supervised: the label is written (× label_scale) into the zeros a `pad` layer in front
///          of the first trained layer appends (its first num_classes); positives carry the true
///          label, negatives a wrong one drawn at random; the plain forward (no label, all zero)
///          is what the readout and evaluation see.
///   scff   unsupervised: a `duplicate` layer in front of the first trained layer makes [h, h]
///          (the positive); a negative is [h_i, h_j], h_j another sample of the batch (j = i + s
///          mod batch, s drawn each step in 1..batch−1).
/// The readout is trained every step by cross-entropy on the features of the plain forward,
/// detached (no gradient into the features). The draws come from a stream that is a pure function
/// of (seed, update index): the rule's state is that index.
struct ForwardForwardOptions {
  double threshold = 1.0;      ///< τ, per output unit of a block (G is compared with τ·U)
  int head = 1;                ///< the readout: the last `head` layers (digital), ≥ 1
  bool train_physical = true;  ///< false: physical layers stay fixed (no twin needed)
};
struct FfConfig : ForwardForwardOptions {
  double label_scale = 1.0;  ///< the value written at the label's position
};
struct ScffConfig : ForwardForwardOptions {};
/// A readout trained on frozen features: only the last `head` layers (digital) learn, by
/// cross-entropy through them; every other layer keeps its θ. The linear probe of SCFF features.
struct ProbeConfig {
  int head = 1;
};

/// Equilibrium propagation (Scellier & Bengio 2017; centred EP: Laborieux et al. 2021) on an
/// energy-based physical layer: the device settles free (v⁰), and nudged towards the one-hot
/// target by the cost β·½‖logits − target‖² (v^±β, warm-started from the free state); each
/// conductance's gradient is the difference of its ∂E/∂θ = ½(ΔV)² between two states:
///   positive  (∂E/∂θ(v^β) − ∂E/∂θ(v⁰)) / β
///   negative  (∂E/∂θ(v⁰) − ∂E/∂θ(v^−β)) / β
///   centred   (∂E/∂θ(v^β) − ∂E/∂θ(v^−β)) / 2β   (bias O(β²))
/// an estimate of ∂L/∂θ for L = ½‖logits − target‖² (mean over the batch), the loss EP
/// minimises whatever training.loss says. β is in mS (the cost's unit is the energy's, mS·V²).
/// The network must be that one layer.
struct EpConfig {
  enum class Nudging { kPositive, kNegative, kCentred };
  Nudging nudging = Nudging::kCentred;
  double beta = 0.006;
  bool warm_start = true;  ///< nudged settles start from the free equilibrium
};
const char* to_string(EpConfig::Nudging nudging);
/// Coupled learning (Stern et al., PRX 11, 021045, 2021): a free settle, then a settle with the
/// output nodes clamped at y_F + η(y − y_F), y the output voltages that would read the target
/// (each pair moved symmetrically); gradient (∂E/∂θ(clamped) − ∂E/∂θ(free)) / η per sample.
struct CoupledLearningConfig {
  double eta = 0.1;        ///< η in (0, 1]
  bool warm_start = true;  ///< the clamped settle starts from the free equilibrium
};

/// `training.method`: one of the rules with its options.
using RuleConfig = std::variant<PatConfig, InSilicoConfig, SpsaConfig, MgdConfig, PcConfig,
                                FfConfig, ScffConfig, ProbeConfig, EpConfig, CoupledLearningConfig>;
/// "pat", "in-silico", "spsa", "mgd", "pc", "ff", "scff", "probe", "ep", "coupled-learning"
/// (also the job's phase name).
std::string to_string(const RuleConfig& rule);
/// Every rule's name, in the order above.
const std::vector<std::string>& rule_names();
/// The rule `name` with its default options; throws RuleError naming the rules for another name.
RuleConfig default_rule_config(const std::string& name);

/// The rule for `config`; `seed` seeds its random stream. Throws RuleError on an option out of
/// its range (naming the option and the range).
std::unique_ptr<LearningRule> make_learning_rule(const RuleConfig& config, std::uint64_t seed);

}  // namespace pnn::training
