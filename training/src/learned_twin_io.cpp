// save_twin / load_twin (learned_twin.hpp): a fitted twin as a checkpoint file (checkpoint.hpp),
// so it gets that format's version, CRC and atomic write. Metadata: pnn.twin.family,
// pnn.twin.hidden, pnn.twin.uses_theta and the sizes; one LayerState per vector, by kind.
#include <sstream>

#include "pnn/digital_twin/mlp_twin.hpp"
#include "pnn/digital_twin/neural_ode.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/learned_twin.hpp"

namespace pnn::training {
namespace {

namespace dt = digital_twin;

std::string join(const std::vector<Index>& v) {
  std::ostringstream s;
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}

std::vector<Index> split(const std::string& s) {
  std::vector<Index> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

void put(Checkpoint& c, const std::string& kind, const Vector& v) {
  c.layers.push_back({kind, "", Vector(), v});
}

class Reader {
 public:
  Reader(const Checkpoint& c, std::string source) : c_(c), source_(std::move(source)) {}
  Vector vec(const std::string& kind) const {
    for (const auto& l : c_.layers) {
      if (l.kind == kind) return l.twin_phi;
    }
    fail("no '" + kind + "' record");
  }
  std::string meta(const std::string& key) const {
    auto it = c_.metadata.find(key);
    if (it == c_.metadata.end()) fail("no metadata '" + key + "' (not a learned-twin file?)");
    return it->second;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(source_ + ": " + what);
  }

 private:
  const Checkpoint& c_;
  std::string source_;
};

}  // namespace

namespace {

Checkpoint twin_checkpoint(const dt::DifferentiableModel& twin, const std::string& where) {
  Checkpoint c;
  c.metadata["pnn.twin.name"] = twin.name();
  c.metadata["pnn.twin.sizes"] = join({twin.num_inputs(), twin.num_params(), twin.num_outputs()});
  put(c, "phi", twin.physical_params());
  if (const auto* ode = dynamic_cast<const dt::NeuralOdeTwin*>(&twin)) {
    const auto& o = ode->config();
    // Stored as the device reads it (end of sequence), whichever readout `twin` has.
    c.metadata["pnn.twin.sizes"] = join({twin.num_inputs(), twin.num_params(), o.stno.num_neurons});
    c.metadata["pnn.twin.family"] = to_string(TwinFamily::kNeuralOde);
    c.metadata["pnn.twin.hidden"] = join(o.hidden);
    c.metadata["pnn.twin.rk4_steps"] = std::to_string(o.rk4_steps);
    c.metadata["pnn.twin.physics_prior"] = std::to_string(o.physics_prior ? 1 : 0);
  } else if (const auto* mlp = dynamic_cast<const dt::MlpTwin*>(&twin)) {
    const auto& m = mlp->config();
    c.metadata["pnn.twin.family"] = to_string(TwinFamily::kBlackBox);
    c.metadata["pnn.twin.hidden"] = join(m.hidden);
    for (const auto& [name, n] : {std::pair{"x", &m.x}, {"theta", &m.theta}, {"y", &m.y}}) {
      put(c, std::string(name) + ".offset", n->offset);
      put(c, std::string(name) + ".scale", n->scale);
    }
  } else if (const auto* res = dynamic_cast<const dt::ResidualTwin*>(&twin)) {
    const auto& r = res->config();
    c.metadata["pnn.twin.family"] = to_string(TwinFamily::kResidual);
    c.metadata["pnn.twin.hidden"] = join(r.hidden);
    c.metadata["pnn.twin.uses_theta"] = r.uses_theta ? "1" : "0";
    put(c, "x.offset", r.x.offset);
    put(c, "x.scale", r.x.scale);
    put(c, "theta.offset", r.theta.offset);
    put(c, "theta.scale", r.theta.scale);
    put(c, "y.scale", r.y_scale);
  } else if (twin.num_physical_params() > 0) {
    c.metadata["pnn.twin.family"] = to_string(TwinFamily::kGreyBox);
  } else {
    throw CheckpointError(where + ": the " + twin.name() + " twin has nothing fitted to save");
  }
  return c;
}

dt::ModelPtr twin_from_checkpoint(const Checkpoint& c, const std::string& source,
                                  const dt::ModelPtr& nominal, const TwinSizes& shape) {
  const Reader in(c, source);
  const std::string sizes = join({shape.inputs, shape.params, shape.outputs});
  if (in.meta("pnn.twin.sizes") != sizes) {
    in.fail("the twin was fitted for sizes (inputs, params, outputs) " + in.meta("pnn.twin.sizes") +
            ", the device's are " + sizes + ": fit it again for this device");
  }
  const std::string family = in.meta("pnn.twin.family");
  if (!nominal && parse_twin_family(family) != TwinFamily::kBlackBox) {
    in.fail("a " + family + " twin is built on the device's datasheet twin, and this device has "
            "none: fit the mlp (black-box) family for it");
  }
  try {
    const Vector phi = in.vec("phi");
    switch (parse_twin_family(family)) {
      case TwinFamily::kGreyBox:
        return grey_box_of(nominal)->with_physical_params(phi);
      case TwinFamily::kResidual:
        return std::make_shared<dt::ResidualTwin>(dt::ResidualTwinConfig{
            .physics = nominal, .hidden = split(in.meta("pnn.twin.hidden")),
            .uses_theta = in.meta("pnn.twin.uses_theta") == "1",
            .x = {in.vec("x.offset"), in.vec("x.scale")},
            .theta = {in.vec("theta.offset"), in.vec("theta.scale")},
            .y_scale = in.vec("y.scale"), .weights = phi, .seed = 0});
      case TwinFamily::kBlackBox:
        return std::make_shared<dt::MlpTwin>(dt::MlpTwinConfig{
            .num_inputs = shape.inputs, .num_params = shape.params,
            .num_outputs = shape.outputs, .hidden = split(in.meta("pnn.twin.hidden")),
            .x = {in.vec("x.offset"), in.vec("x.scale")},
            .theta = {in.vec("theta.offset"), in.vec("theta.scale")},
            .y = {in.vec("y.offset"), in.vec("y.scale")}, .weights = phi, .seed = 0});
      case TwinFamily::kNeuralOde: {
        TwinFitOptions o;
        o.hidden = split(in.meta("pnn.twin.hidden"));
        o.ode_rk4_steps = std::stoll(in.meta("pnn.twin.rk4_steps"));
        o.ode_physics_prior = in.meta("pnn.twin.physics_prior") == "1";
        return neural_ode_of(nominal, o, false)->with_physical_params(phi);
      }
    }
  } catch (const std::invalid_argument& e) {
    in.fail(std::string("does not hold a valid ") + family + " twin: " + e.what());
  }
  in.fail("unknown twin family");
}

}  // namespace

void save_twin(const dt::DifferentiableModel& twin, const std::filesystem::path& path) {
  save_checkpoint(twin_checkpoint(twin, path.string()), path);
}

TwinSizes sizes_of(const dt::ModelPtr& nominal, const std::string& source) {
  if (!nominal) throw CheckpointError(source + ": no nominal twin given to rebuild the learned twin on");
  return {nominal->num_inputs(), nominal->num_params(), nominal->num_outputs()};
}

dt::ModelPtr load_twin(const std::filesystem::path& path, const dt::ModelPtr& nominal) {
  return twin_from_checkpoint(load_checkpoint(path), path.string(), nominal,
                              sizes_of(nominal, path.string()));
}

std::string encode_twin(const dt::DifferentiableModel& twin) {
  return encode_checkpoint(twin_checkpoint(twin, "twin " + twin.name()));
}

dt::ModelPtr decode_twin(std::string_view bytes, const std::string& source,
                         const dt::ModelPtr& nominal, const TwinSizes& sizes) {
  return twin_from_checkpoint(decode_checkpoint(bytes, source), source, nominal, sizes);
}

}  // namespace pnn::training
