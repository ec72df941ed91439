#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/training/learned_twin.hpp"
#include "pnn/training/job.hpp"
#include "pnn/common/yaml_reader.hpp"

namespace pnn::training {
namespace {

using Reader = common::YamlReader<ConfigError>;

std::string known_rules() {
  std::string out;
  for (const auto& n : rule_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

LayerSpec parse_layer(const Reader& r, const YAML::Node& node, const std::string& where,
                      const JobConfig& config) {
  if (node.IsMap() && node.size() > 1) {
    std::string keys;
    for (const auto& kv : node) keys += (keys.empty() ? "" : ", ") + r.key_text(kv.first, where);
    r.fail(node, where, "an entry has one key (its kind), but this one has " + keys +
                            "; each network entry is one of: physical: DEVICE, pad: N, "
                            "slice: {first, count, gain}, affine: OUTPUTS, activation: "
                            "relu|tanh|sin|sigmoid");
  }
  if (!node.IsMap() || node.size() != 1) {
    r.fail(node, where,
           "each network entry is one of: physical: DEVICE, pad: N, "
           "slice: {first, count, gain}, affine: OUTPUTS, activation: relu|tanh|sin|sigmoid, "
           "duplicate: true");
  }
  const auto kind = r.key_text(node.begin()->first, where);
  const YAML::Node value = node.begin()->second;
  const std::string key = where + "." + kind;
  LayerSpec spec;
  auto positive = [&](const YAML::Node& v, const std::string& k) {
    const auto n = r.scalar_as<long long>(v, k, "a whole number");
    if (n < 1) r.fail(v, k, "must be ≥ 1");
    return static_cast<Index>(n);
  };
  if (kind == "physical") {
    spec.kind = LayerSpec::Kind::kPhysical;
    // yaml-cpp's Node assignment writes through to the node it refers to: never reassign.
    const YAML::Node device = value.IsMap() ? value["device"] : value;
    if (value.IsMap()) {  // {device: NAME, twin: nominal | none | learned:<id> | {fit: ...}}
      r.only_keys(value, key, {"device", "twin", "backward"});
      const auto backward = r.get<std::string>(value, key, "backward", "measured",
                                               "measured, spike-train or twin");
      if (backward != "measured" && backward != "twin" && backward != "spike-train") {
        r.fail(value["backward"], key + ".backward",
               "'" + backward + "' is not one of measured (surrogate gradients at the device's "
               "recorded spikes), spike-train (the spike-train-level rule at them), twin (the "
               "twin's own activity)");
      }
      spec.backward_at_record = backward != "twin";
      spec.spike_train_rule = backward == "spike-train";
      if (!device.IsDefined()) r.fail(value, key, "needs device: NAME (a device from 'devices')");
      const YAML::Node twin_node = value["twin"];
      const std::string tkey = key + ".twin";
      if (twin_node.IsDefined() && twin_node.IsMap()) {  // {fit: FAMILY, samples: N, repeats: R}
        r.only_keys(twin_node, tkey, {"fit", "samples", "repeats", "refit_on_drift"});
        if (!twin_node["fit"].IsDefined()) {
          r.fail(twin_node, tkey, "needs fit: FAMILY (grey-box, residual or mlp)");
        }
        spec.fit_family = r.scalar_as<std::string>(twin_node["fit"], tkey + ".fit", "a twin family");
        try {
          if (parse_twin_family(spec.fit_family) == TwinFamily::kNeuralOde) {
            r.fail(twin_node["fit"], tkey + ".fit",
                   "a neural-ode twin is fitted from measured trajectories (one device run per "
                   "sequence length, fit_trajectory_twin), which a job cannot do yet: choose "
                   "grey-box, residual or mlp");
          }
        } catch (const std::invalid_argument& e) {
          r.fail(twin_node["fit"], tkey + ".fit", e.what());
        }
        const auto samples = r.get<long long>(twin_node, tkey, "samples", 4096, "a whole number");
        const auto repeats = r.get<long long>(twin_node, tkey, "repeats", 1, "a whole number");
        if (samples < 16 || samples > kMaxFitSamples) {
          r.fail(twin_node["samples"], tkey + ".samples",
                 "must be in [16, " + std::to_string(kMaxFitSamples) + "]");
        }
        if (repeats < 1 || repeats > kMaxFitRepeats) {
          r.fail(twin_node["repeats"], tkey + ".repeats",
                 "must be in [1, " + std::to_string(kMaxFitRepeats) + "]");
        }
        spec.fit_samples = static_cast<Index>(samples);
        spec.fit_repeats = static_cast<int>(repeats);
        spec.refit_on_drift = r.get<double>(twin_node, tkey, "refit_on_drift", 0.0, "a number");
        if (!(spec.refit_on_drift >= 0.0) || !std::isfinite(spec.refit_on_drift)) {
          r.fail(twin_node["refit_on_drift"], tkey + ".refit_on_drift",
                 "must be a finite NMSE bound ≥ 0 (0: never refit), e.g. 0.05");
        }
      } else {
        const auto twin = r.get<std::string>(value, key, "twin", "nominal",
                                             "nominal, none, learned:<id> or {fit: FAMILY}");
        if (twin.rfind("learned:", 0) == 0) {
          const std::string id = twin.substr(8);
          const bool digits = !id.empty() && id.size() < 19 &&
                              std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
          if (!digits || std::stoull(id) == 0) {
            r.fail(twin_node, tkey, "'" + twin + "': learned:<id> needs a twin id (a positive "
                                    "integer; pnnctl twin list shows them)");
          }
          spec.learned_twin = std::stoull(id);
        } else if (twin != "nominal" && twin != "none") {
          r.fail(twin_node, tkey, "'" + twin + "' is not one of nominal, none, learned:<id>, "
                                  "{fit: grey-box|residual|mlp}");
        }
        spec.twin = twin != "none";
      }
    }
    spec.device = r.scalar_as<std::string>(device, key, "a device name from 'devices'");
    const bool known = std::any_of(config.devices.begin(), config.devices.end(),
                                   [&](const DeviceEntry& d) { return d.name == spec.device; });
    if (!known) r.fail(value, key, "no device named '" + spec.device + "' under 'devices'");
  } else if (kind == "pad") {
    spec.kind = LayerSpec::Kind::kPad;
    spec.count = positive(value, key);
  } else if (kind == "affine") {
    spec.kind = LayerSpec::Kind::kAffine;
    spec.count = positive(value, key);
  } else if (kind == "activation") {
    spec.kind = LayerSpec::Kind::kActivation;
    spec.activation = r.scalar_as<std::string>(value, key, "an activation name");
    try {
      (void)digital_twin::parse_activation(spec.activation);  // one list of names, in the model
    } catch (const std::invalid_argument& e) {
      r.fail(value, key, e.what());
    }
  } else if (kind == "duplicate") {  // [x, x]: the positive pair of scff
    spec.kind = LayerSpec::Kind::kDuplicate;
    if (!r.scalar_as<bool>(value, key, "true")) r.fail(value, key, "must be true");
  } else if (kind == "slice") {
    spec.kind = LayerSpec::Kind::kSlice;
    r.only_keys(value, key, {"first", "count", "gain"});
    spec.first = r.get<long long>(value, key, "first", 0, "a whole number");
    spec.count = r.get<long long>(value, key, "count", 0, "a whole number");
    spec.gain = r.get<double>(value, key, "gain", 1.0, "a number");
    if (spec.count < 1 || spec.first < 0) r.fail(value, key, "needs first ≥ 0 and count ≥ 1");
  } else {
    r.fail(node.begin()->first, key,
           "unknown layer kind (use physical, pad, slice, affine, activation or duplicate)");
  }
  return spec;
}

// training.method: NAME, or {name: NAME, OPTION: VALUE, ...} with the rule's options.
RuleConfig parse_rule(const Reader& r, const YAML::Node& node) {
  const std::string key = "training.method";
  const YAML::Node name_node = node.IsMap() ? node["name"] : node;
  if (node.IsMap() && !name_node.IsDefined()) {
    r.fail(node, key, "needs name: RULE (one of " + known_rules() + ")");
  }
  const auto name = r.scalar_as<std::string>(name_node, node.IsMap() ? key + ".name" : key, "a rule name");
  RuleConfig rule;
  try {
    rule = default_rule_config(name);
  } catch (const RuleError& e) {
    r.fail(name_node, key, e.what() + Reader::hint(name, rule_names()));
  }
  if (!node.IsMap()) return rule;
  auto number = [&](const char* option, double fallback) {
    return r.get<double>(node, key, option, fallback, "a number");
  };
  auto whole = [&](const char* option, int fallback) {
    return r.get<int>(node, key, option, fallback, "a whole number");
  };
  if (auto* spsa = std::get_if<SpsaConfig>(&rule)) {
    r.only_keys(node, key, {"name", "a", "c", "A", "alpha", "gamma", "perturbations"});
    spsa->a = number("a", spsa->a);
    spsa->c = number("c", spsa->c);
    spsa->A = number("A", spsa->A);
    spsa->alpha = number("alpha", spsa->alpha);
    spsa->gamma = number("gamma", spsa->gamma);
    spsa->perturbations = whole("perturbations", spsa->perturbations);
  } else if (auto* mgd = std::get_if<MgdConfig>(&rule)) {
    r.only_keys(node, key, {"name", "code", "amplitude", "tau_x", "tau_theta", "tau_hp"});
    const auto code = r.get<std::string>(node, key, "code", "cdma", "cdma, fdma or tdma");
    if (code != "cdma" && code != "fdma" && code != "tdma") {
      r.fail(node["code"], key + ".code", "'" + code + "' is not one of cdma, fdma, tdma");
    }
    mgd->code = code == "fdma"   ? MgdConfig::Code::kFdma
                : code == "tdma" ? MgdConfig::Code::kTdma
                                 : MgdConfig::Code::kCdma;
    mgd->amplitude = number("amplitude", mgd->amplitude);
    mgd->tau_x = whole("tau_x", mgd->tau_x);
    mgd->tau_theta = whole("tau_theta", mgd->tau_theta);
    mgd->tau_hp = number("tau_hp", mgd->tau_hp);
  } else if (auto* pc = std::get_if<PcConfig>(&rule)) {
    r.only_keys(node, key, {"name", "variant", "iterations", "inference_rate"});
    const auto variant = r.get<std::string>(node, key, "variant", "fixed", "fixed or strict");
    if (variant != "fixed" && variant != "strict") {
      r.fail(node["variant"], key + ".variant", "'" + variant + "' is not one of fixed, strict");
    }
    pc->variant =
        variant == "strict" ? PcConfig::Variant::kStrict : PcConfig::Variant::kFixedPrediction;
    pc->iterations = whole("iterations", pc->iterations);
    pc->inference_rate = number("inference_rate", pc->inference_rate);
  } else if (auto* ff = std::get_if<FfConfig>(&rule)) {
    r.only_keys(node, key, {"name", "threshold", "head", "train_physical", "label_scale"});
    ff->threshold = number("threshold", ff->threshold);
    ff->head = whole("head", ff->head);
    ff->train_physical = r.get<bool>(node, key, "train_physical", true, "true or false");
    ff->label_scale = number("label_scale", ff->label_scale);
  } else if (auto* scff = std::get_if<ScffConfig>(&rule)) {
    r.only_keys(node, key, {"name", "threshold", "head", "train_physical"});
    scff->threshold = number("threshold", scff->threshold);
    scff->head = whole("head", scff->head);
    scff->train_physical = r.get<bool>(node, key, "train_physical", true, "true or false");
  } else if (auto* ep = std::get_if<EpConfig>(&rule)) {
    r.only_keys(node, key, {"name", "nudging", "beta", "warm_start"});
    const auto nudging =
        r.get<std::string>(node, key, "nudging", "centred", "positive, negative or centred");
    if (nudging != "positive" && nudging != "negative" && nudging != "centred") {
      r.fail(node["nudging"], key + ".nudging",
             "'" + nudging + "' is not one of positive, negative, centred");
    }
    ep->nudging = nudging == "positive"   ? EpConfig::Nudging::kPositive
                  : nudging == "negative" ? EpConfig::Nudging::kNegative
                                          : EpConfig::Nudging::kCentred;
    ep->beta = number("beta", ep->beta);
    ep->warm_start = r.get<bool>(node, key, "warm_start", true, "true or false");
  } else if (auto* cl = std::get_if<CoupledLearningConfig>(&rule)) {
    r.only_keys(node, key, {"name", "eta", "warm_start"});
    cl->eta = number("eta", cl->eta);
    cl->warm_start = r.get<bool>(node, key, "warm_start", true, "true or false");
  } else if (auto* probe = std::get_if<ProbeConfig>(&rule)) {
    r.only_keys(node, key, {"name", "head"});
    probe->head = whole("head", probe->head);
  } else {
    r.only_keys(node, key, {"name"});  // pat and in-silico have no options
  }
  try {
    (void)make_learning_rule(rule, 0);  // the options' ranges, checked in one place
  } catch (const RuleError& e) {
    r.fail(node, key, e.what());
  }
  return rule;
}

JobConfig parse_job_config_checked(const std::string& yaml_text, const std::string& source_name) {
  const Reader r(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source_name + ":" + std::to_string(e.mark.line + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(source_name + ": expected a YAML mapping at the top level");
  r.only_keys(root, "", {"name", "seed", "data", "devices", "network", "training", "calibration",
                         "compare", "output"});
  JobConfig c;
  c.source = source_name;
  c.name = r.get<std::string>(root, "", "name", c.name, "a string");
  c.seed = r.get<std::uint64_t>(root, "", "seed", 0, "a non-negative whole number");
  c.output_dir = "runs/" + c.name;

  if (const auto data = root["data"]; data.IsDefined()) {
    r.only_keys(data, "data", {"name", "image_side", "max_train", "max_test"});
    c.dataset = r.get<std::string>(data, "data", "name", c.dataset, "a string");
    if (c.dataset != "digits" && c.dataset != "digits-8x4" && c.dataset != "fashion-mnist" &&
        c.dataset != "yin-yang") {
      r.fail(data["name"], "data.name",
             "unknown data set '" + c.dataset +
                 "' (use digits, digits-8x4, fashion-mnist or yin-yang)");
    }
    c.data_options.image_side = r.get<int>(data, "data", "image_side", 8, "a whole number");
    c.data_options.max_train = r.get<long long>(data, "data", "max_train", 0, "a whole number");
    c.data_options.max_test = r.get<long long>(data, "data", "max_test", 0, "a whole number");
    if (c.data_options.image_side < 1 || c.data_options.image_side > 28) {
      r.fail(data["image_side"], "data.image_side", "must be 1..28");
    }
  } else {
    c.data_options.image_side = 8;
  }

  // Present but of the wrong kind: the message points at the value and says what it is.
  const auto devices = root["devices"];
  if (!devices.IsDefined() || !devices.IsMap() || devices.size() == 0) {
    r.fail(devices.IsDefined() ? devices : root, "devices",
           std::string("required: a mapping NAME: ADDRESS, e.g. "
                       "osc-a: sim://mechanical-oscillators?seed=1&n=64") +
               (devices.IsDefined() ? ", got " + Reader::describe(devices) : ""));
  }
  for (const auto& kv : devices) {
    const std::string name = r.key_text(kv.first, "devices");
    c.devices.push_back({name, r.scalar_as<std::string>(kv.second, "devices." + name,
                                                        "a device address")});
  }

  const auto network = root["network"];
  if (!network.IsDefined() || !network.IsSequence() || network.size() == 0) {
    r.fail(network.IsDefined() ? network : root, "network",
           std::string("required: a list of layers, e.g. - physical: osc-a") +
               (network.IsDefined() ? ", got " + Reader::describe(network) : ""));
  }
  for (std::size_t i = 0; i < network.size(); ++i) {
    c.network.push_back(parse_layer(r, network[i], "network[" + std::to_string(i) + "]", c));
  }

  if (const auto t = root["training"]; t.IsDefined()) {
    r.only_keys(t, "training", {"method", "optimizer", "learning_rate", "momentum", "batch_size",
                                "epochs", "loss", "seed", "compute", "lr_schedule"});
    if (const auto method = t["method"]; method.IsDefined() && !method.IsNull()) {
      c.training.method = parse_rule(r, method);
    }
    // Gradient rules default to Adam; the zeroth-order rules to plain SGD (Spall's update).
    const bool zeroth_order = std::holds_alternative<SpsaConfig>(c.training.method) ||
                              std::holds_alternative<MgdConfig>(c.training.method);
    c.training.optimizer = r.get<std::string>(t, "training", "optimizer",
                                              zeroth_order ? "sgd" : "adam", "a string");
    if (c.training.optimizer != "adam" && c.training.optimizer != "sgd") {
      r.fail(t["optimizer"], "training.optimizer", "unknown optimizer (use adam or sgd)");
    }
    if (std::holds_alternative<SpsaConfig>(c.training.method) && t["learning_rate"].IsDefined()) {
      r.fail(t["learning_rate"], "training.learning_rate",
             "spsa sets the learning rate of update k itself, a_k = a/(k+1+A)^alpha: set "
             "training.method.a instead");
    }
    c.training.learning_rate = r.get<double>(t, "training", "learning_rate", 3e-3, "a number");
    if (!(c.training.learning_rate > 0.0)) {
      r.fail(t["learning_rate"], "training.learning_rate", "must be > 0");
    }
    const auto schedule = r.get<std::string>(t, "training", "lr_schedule", "constant", "a string");
    if (schedule != "constant" && schedule != "cosine") {
      r.fail(t["lr_schedule"], "training.lr_schedule",
             "unknown schedule (use constant, or cosine: annealed to 0 over the epochs)");
    }
    c.training.lr_schedule = schedule == "cosine" ? TrainOptions::Schedule::kCosine
                                                  : TrainOptions::Schedule::kConstant;
    c.training.momentum = r.get<double>(t, "training", "momentum", 0.0, "a number");
    c.training.batch_size = r.get<long long>(t, "training", "batch_size", 32, "a whole number");
    if (c.training.batch_size < 1) r.fail(t["batch_size"], "training.batch_size", "must be ≥ 1");
    c.training.epochs = r.get<int>(t, "training", "epochs", 40, "a whole number");
    if (c.training.epochs < 0) r.fail(t["epochs"], "training.epochs", "must be ≥ 0");
    const auto loss = r.get<std::string>(t, "training", "loss", "cross_entropy", "a string");
    if (loss != "cross_entropy" && loss != "mse") {
      r.fail(t["loss"], "training.loss", "unknown loss (use cross_entropy or mse)");
    }
    c.training.loss = loss == "mse" ? LossKind::kMse : LossKind::kCrossEntropy;
    c.training.seed = r.get<std::uint64_t>(t, "training", "seed", c.seed, "a non-negative whole number");
    const auto compute = r.get<std::string>(t, "training", "compute", "float64", "a string");
    const auto precision = digital_twin::parse_precision(compute);
    if (!precision) r.fail(t["compute"], "training.compute", "unknown precision (use float64 or float32)");
    c.compute = precision.value_or(digital_twin::Precision::kFloat64);
  } else {
    c.training.seed = c.seed;
  }

  if (const auto cal = root["calibration"]; cal.IsDefined()) {
    r.only_keys(cal, "calibration", {"enabled", "samples"});
    c.calibrate = r.get<bool>(cal, "calibration", "enabled", true, "true or false");
    c.calibration_samples = r.get<long long>(cal, "calibration", "samples", 256, "a whole number");
    if (c.calibration_samples < 1) r.fail(cal["samples"], "calibration.samples", "must be ≥ 1");
  }
  if (const auto cmp = root["compare"]; cmp.IsDefined()) {
    r.only_keys(cmp, "compare", {"in_silico", "digital_hidden"});
    c.compare_in_silico = r.get<bool>(cmp, "compare", "in_silico", true, "true or false");
    c.digital_hidden = r.get<long long>(cmp, "compare", "digital_hidden", 0, "a whole number");
    if (c.digital_hidden < 0) r.fail(cmp["digital_hidden"], "compare.digital_hidden", "must be ≥ 0");
  }
  if (const auto out = root["output"]; out.IsDefined()) {
    r.only_keys(out, "output", {"dir"});
    c.output_dir = r.get<std::string>(out, "output", "dir", c.output_dir, "a path");
  }
  return c;
}

}  // namespace

JobConfig parse_job_config(const std::string& yaml_text, const std::string& source_name) {
  return common::parse_yaml_config<ConfigError>(yaml_text, source_name, parse_job_config_checked);
}

JobConfig load_job_config(const std::string& path) {
  return common::load_yaml_config<ConfigError>(
      path, "the config file (check the path; examples are in configs/jobs/)",
      parse_job_config_checked);
}

}  // namespace pnn::training
