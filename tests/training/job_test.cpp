#include "pnn/training/job.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <fstream>
#include <unistd.h>

#include "pnn/drivers/registry.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/job_summary.hpp"
#include "pnn/training/learned_twin.hpp"
#include "test_util.hpp"

using namespace pnn::training;
namespace fs = std::filesystem;

namespace {

const char* kGood = R"(name: tiny
seed: 3
data: {name: digits}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64
  osc-b: sim://mechanical-oscillators?seed=2&n=74
network:
  - physical: osc-a
  - pad: 10
  - physical: osc-b
  - slice: {first: 64, count: 10, gain: 3.0}
training: {epochs: 2, batch_size: 64}
compare: {in_silico: false}
)";

std::string with(const std::string& from, const std::string& to) {
  return pnn::test::replaced(kGood, from, to);
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("pnn-job-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("job config: a valid file parses into the job") {
  const JobConfig c = parse_job_config(kGood, "tiny.yaml");
  CHECK(c.name == "tiny");
  CHECK(c.seed == 3);
  CHECK(c.devices.size() == 2);
  CHECK(c.network.size() == 4);
  CHECK(c.network[3].gain == 3.0);
  CHECK(c.training.epochs == 2);
  CHECK(std::holds_alternative<PatConfig>(c.training.method));
  CHECK_FALSE(c.compare_in_silico);
}

TEST_CASE("job config: errors name the file, the line, the key and the fix") {
  CHECK_THROWS_WITH_AS(parse_job_config(with("training:", "trainig:"), "job.yaml"),
                       doctest::Contains("job.yaml:12: 'trainig': unknown key (did you mean 'training'?)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config(with("epochs: 2", "epochs: two"), "job.yaml"),
                       doctest::Contains("'training.epochs': expected a whole number, got 'two'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config(with("physical: osc-b", "physical: osc-c"), "job.yaml"),
                       doctest::Contains("no device named 'osc-c'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config(with("name: digits", "name: mnist"), "job.yaml"),
                       doctest::Contains("use digits, digits-8x4, fashion-mnist or yin-yang"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config(with("batch_size: 64", "batch_size: 0"), "job.yaml"),
                       doctest::Contains("'training.batch_size': must be ≥ 1"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config(with("  - pad: 10\n", "  - pad: 10\n  - activation: swish\n"), "job.yaml"),
                       doctest::Contains("unknown activation 'swish'"), ConfigError);
  CHECK(parse_job_config(with("  - pad: 10\n", "  - pad: 10\n  - activation: sigmoid\n"), "job.yaml")
            .network[2].activation == "sigmoid");
  CHECK_THROWS_WITH_AS(parse_job_config("name: [unclosed", "job.yaml"),
                       doctest::Contains("job.yaml:1: YAML syntax error"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_job_config("name: x\n", "job.yaml"),
                       doctest::Contains("'devices': required"), ConfigError);
  CHECK_THROWS_WITH_AS(load_job_config("/nonexistent/job.yaml"),
                       doctest::Contains("cannot open the config file"), ConfigError);
}

TEST_CASE("job runner: bad device address and wrong layer widths are config errors") {
  CHECK_THROWS_WITH_AS(run_job(parse_job_config(with("seed=1&n=64", "seed=1&n=64&gap=huge"), "job.yaml")),
                       doctest::Contains("devices.osc-a"), ConfigError);
  CHECK_THROWS_WITH_AS(run_job(parse_job_config(with("pad: 10", "pad: 9"), "job.yaml")),
                       doctest::Contains("device 'osc-b' takes 74 inputs but the previous layer gives 73"),
                       ConfigError);
}

TEST_CASE("job runner: trains, writes checkpoint and plot, and resumes from the checkpoint") {
  const fs::path dir = temp_dir("resume");
  JobConfig c = parse_job_config(kGood, "tiny.yaml");
  c.output_dir = dir.string();
  const JobResult first = run_job(c).value();
  REQUIRE(first.phases.size() == 1);
  CHECK(first.phases[0].history.size() == 2);
  CHECK(first.phases[0].acc_hardware > 0.3);  // learning happened, even in 2 epochs
  const Checkpoint ckpt = load_checkpoint(first.checkpoint_path);
  CHECK(ckpt.epoch == 2);
  REQUIRE(ckpt.layers.size() == 4);
  CHECK(ckpt.layers[0].device_serial == "SIM-OSC-1");
  CHECK(ckpt.layers[2].device_serial == "SIM-OSC-2");
  CHECK(ckpt.optimizer.kind == "adam");
  std::ifstream svg(first.plot_path);
  std::string text((std::istreambuf_iterator<char>(svg)), {});
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("PAT, on hardware") != std::string::npos);

  // Resume: 2 more epochs continue from epoch 2 with the saved θ and optimizer state.
  c.training.epochs = 4;
  const JobResult second = run_job(c, {}, {.resume_checkpoint = first.checkpoint_path}).value();
  REQUIRE(second.phases[0].history.size() == 2);
  CHECK(second.phases[0].history.front().epoch == 3);
  CHECK(load_checkpoint(second.checkpoint_path).epoch == 4);

  // A checkpoint is bound to its devices: another serial is refused.
  JobConfig other = c;
  other.devices[0].address = "sim://mechanical-oscillators?seed=9&n=64";
  CHECK_THROWS_WITH_AS(run_job(other, {}, {.resume_checkpoint = first.checkpoint_path}),
                       doctest::Contains("trained on device 'SIM-OSC-1'"), ConfigError);
  fs::remove_all(dir);
}

TEST_CASE("job runner: a caller's devices are driven only through the executor it gives") {
  const fs::path dir = temp_dir("executor");
  JobConfig c = parse_job_config(kGood, "tiny.yaml");
  c.output_dir = dir.string();
  c.training.epochs = 1;
  std::map<std::string, pnn::drivers::PhysicalSystemPtr> owned;
  JobOptions options;
  options.write_outputs = false;
  auto open_devices = [&] {  // fresh instruments: same serials, noise streams from the start
    for (const auto& d : c.devices) {
      owned[d.name] = pnn::drivers::make_physical_system(d.address);
      REQUIRE(owned[d.name]->configure());
      REQUIRE(owned[d.name]->activate());
      options.external_devices[d.name] = owned[d.name].get();
    }
  };
  open_devices();
  const auto direct = run_job(c, {}, options).value();
  open_devices();

  // The same job with every device call run on one other thread, as the daemon's worker does.
  std::map<std::string, int> calls;
  std::set<std::thread::id> threads;
  for (const auto& d : c.devices) {
    options.device_executors[d.name] = [&, name = d.name](const std::function<void()>& call) {
      ++calls[name];
      std::async(std::launch::async, [&] {
        threads.insert(std::this_thread::get_id());
        call();
      }).get();
    };
  }
  const auto routed = run_job(c, {}, options).value();
  CHECK(calls["osc-a"] > 0);
  CHECK(calls["osc-a"] == calls["osc-b"]);
  CHECK_FALSE(threads.count(std::this_thread::get_id()));
  // Same devices, same seeds: the route changes nothing in the results.
  REQUIRE(routed.phases.size() == direct.phases.size());
  CHECK(routed.phases[0].acc_hardware == direct.phases[0].acc_hardware);
  CHECK(routed.phases[0].history.back().train_loss == doctest::Approx(direct.phases[0].history.back().train_loss).epsilon(1e-12));

  // An executor that refuses proves nothing reaches the device around it.
  options.device_executors["osc-b"] = [](const std::function<void()>&) {
    throw std::runtime_error("executor closed");
  };
  CHECK_THROWS_WITH(run_job(c, {}, options), doctest::Contains("executor closed"));
  fs::remove_all(dir);
}

TEST_CASE("job runner: JobOptions twins replace the nominal twin of the named device") {
  JobConfig c = parse_job_config(kGood, "tiny.yaml");
  c.training.epochs = 1;
  const auto nominal = pnn::drivers::make_physical_system(c.devices[0].address)->nominal_twin();
  JobOptions options;
  options.write_outputs = false;
  const auto plain = run_job(c, {}, options).value();
  // A learned twin of osc-a with every κ_i = 1.3: the backward pass and the twin evaluation change.
  auto grey = grey_box_of(nominal);
  pnn::Vector phi = grey->physical_params();
  phi.head(64).setConstant(1.3);
  options.twins["osc-a"] = grey->with_physical_params(phi);
  const auto learned = run_job(c, {}, options).value();
  CHECK(learned.phases[0].acc_twin != plain.phases[0].acc_twin);
  options.twins["osc-a"] = pnn::drivers::make_physical_system(c.devices[1].address)->nominal_twin();
  CHECK_THROWS_AS(run_job(c, {}, options), std::invalid_argument);  // 74 oscillators for a 64 device
}

TEST_CASE("job config: twin: learned:<id> and twin: {fit: ...} parse, bad ones name the fix") {
  const JobConfig c = parse_job_config(
      with("- physical: osc-a\n", "- physical: {device: osc-a, twin: learned:12}\n") , "t.yaml");
  CHECK(c.network[0].learned_twin == 12);
  CHECK(c.network[0].twin);
  const JobConfig f = parse_job_config(
      with("- physical: osc-a\n",
           "- physical: {device: osc-a, twin: {fit: residual, samples: 300, repeats: 2}}\n"),
      "t.yaml");
  CHECK(f.network[0].fit_family == "residual");
  CHECK(f.network[0].fit_samples == 300);
  CHECK(f.network[0].fit_repeats == 2);
  const std::pair<const char*, const char*> bad[] = {
      {"twin: 'learned:'", "learned:<id> needs a twin id"},
      {"twin: learned:0", "learned:<id> needs a twin id"},
      {"twin: learned:x1", "learned:<id> needs a twin id"},
      {"twin: grey", "is not one of nominal, none, learned:<id>"},
      {"twin: {fit: spline}", "accepted: grey-box, residual, mlp"},
      {"twin: {samples: 10}", "needs fit: FAMILY"},
      {"twin: {fit: mlp, samples: 2}", "must be in [16, 1000000]"},
      {"twin: {fit: mlp, rows: 2}", "rows"},
  };
  for (const auto& [text, message] : bad) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(
        parse_job_config(with("- physical: osc-a\n",
                              std::string("- physical: {device: osc-a, ") + text + "}\n"),
                         "t.yaml"),
        doctest::Contains(message), ConfigError);
  }
}

TEST_CASE("job runner: twin: {fit: ...} fits the device's twin, and the checkpoint records it") {
  const fs::path dir = temp_dir("fit-twin");
  JobConfig c = parse_job_config(
      with("- physical: osc-a\n", "- physical: {device: osc-a, twin: {fit: grey-box, samples: 512}}\n"),
      "t.yaml");
  c.training.epochs = 1;
  c.output_dir = (dir / "run").string();
  std::vector<std::string> logs;
  JobCallbacks cb;
  cb.on_log = [&](const std::string& m) { logs.push_back(m); };
  const auto result = run_job(c, cb).value();
  REQUIRE(result.twins.count("osc-a") == 1);
  CHECK(result.twins.at("osc-a").first == "fit:grey-box");
  CHECK(result.twins.at("osc-a").second.size() == 64);
  CHECK(std::any_of(logs.begin(), logs.end(), [](const std::string& m) {
    return m.find("fitted a grey-box twin of osc-a from 512 samples") != std::string::npos;
  }));
  const Checkpoint ck = load_checkpoint(result.checkpoint_path);
  CHECK(ck.metadata.at("pnn.twin.osc-a.source") == "fit:grey-box");
  CHECK(ck.metadata.at("pnn.twin.osc-a.data_hash") == result.twins.at("osc-a").second);
  // Resuming refits: the simulator is deterministic, so the same samples give the same data
  // hash; other data (here: more samples) is noted, not refused.
  JobOptions resume;
  resume.resume_checkpoint = result.checkpoint_path;
  logs.clear();
  c.training.epochs = 2;
  c.network[0].fit_samples = 600;
  REQUIRE(run_job(c, cb, resume));
  CHECK(std::any_of(logs.begin(), logs.end(), [](const std::string& m) {
    return m.find("note: osc-a was trained with fit:grey-box") != std::string::npos;
  }));
  fs::remove_all(dir);
}

TEST_CASE("job runner: twin: learned:<id> is pnnd's to resolve, and resumes only with that twin") {
  const fs::path dir = temp_dir("learned-twin");
  JobConfig c = parse_job_config(
      with("- physical: osc-a\n", "- physical: {device: osc-a, twin: learned:3}\n"), "t.yaml");
  c.training.epochs = 1;
  c.output_dir = (dir / "run").string();
  CHECK_THROWS_WITH_AS(run_job(c), doctest::Contains("only pnnd resolves: submit the job to pnnd"),
                       ConfigError);
  // As pnnd gives it: the twin and its provenance.
  const auto nominal = pnn::drivers::make_physical_system(c.devices[0].address)->nominal_twin();
  JobOptions options;
  options.twins["osc-a"] = grey_box_of(nominal);
  options.twin_provenance["osc-a"] = {"learned:3", std::string(64, 'c')};
  const auto result = run_job(c, {}, options).value();
  const Checkpoint ck = load_checkpoint(result.checkpoint_path);
  CHECK(ck.metadata.at("pnn.twin.osc-a.source") == "learned:3");
  JobOptions other = options;
  other.resume_checkpoint = result.checkpoint_path;
  other.twin_provenance["osc-a"] = {"learned:4", std::string(64, 'd')};
  c.training.epochs = 2;
  CHECK_THROWS_WITH_AS(run_job(c, {}, other), doctest::Contains("resume with the same twin (twin: learned:3)"),
                       ConfigError);
  other.twin_provenance = options.twin_provenance;
  CHECK(run_job(c, {}, other));
  fs::remove_all(dir);
}

TEST_CASE("job runner: twin: {refit_on_drift} refits a drifting device's twin, not a steady one's") {
  const fs::path dir = temp_dir("refit");
  auto job = [&](const std::string& address_suffix) {
    JobConfig c = parse_job_config(
        with("- physical: osc-a\n",
             "- physical: {device: osc-a, twin: {fit: grey-box, samples: 256, refit_on_drift: 0.01}}\n"),
        "t.yaml");
    c.devices[0].address += address_suffix;
    c.training.epochs = 2;  // the assertions need one refit, after epoch 1; short for ASan
    c.output_dir = (dir / "run").string();
    std::vector<std::string> logs;
    JobCallbacks cb;
    cb.on_log = [&](const std::string& m) { logs.push_back(m); };
    auto r = run_job(c, cb);
    REQUIRE(r);
    return std::pair{r.value(), logs};
  };
  // Drift 0.5 per 1,000 samples: an epoch runs thousands of samples, so the gain moves by more
  // than the bound allows and every epoch's check refits.
  const auto [drifting, logs] = job("&drift=0.5");
  CHECK_FALSE(drifting.refits.empty());
  CHECK(drifting.refits[0].find("osc-a after epoch 1") != std::string::npos);
  CHECK(std::any_of(logs.begin(), logs.end(), [](const std::string& m) {
    return m.find("refit on drift: osc-a") != std::string::npos;
  }));
  const Checkpoint ck = load_checkpoint(drifting.checkpoint_path);
  CHECK(ck.metadata.at("pnn.twin.osc-a.data_hash") == drifting.twins.at("osc-a").second);
  const auto [steady, steady_logs] = job("");
  CHECK(steady.refits.empty());
  CHECK(std::string(job_summary_json(parse_job_config(kGood, "t.yaml"), drifting)).find("\"refits\"") !=
        std::string::npos);
  CHECK_THROWS_WITH_AS(
      parse_job_config(with("- physical: osc-a\n",
                            "- physical: {device: osc-a, twin: {fit: mlp, refit_on_drift: -1}}\n"),
                       "t.yaml"),
      doctest::Contains("must be a finite NMSE bound"), ConfigError);
  fs::remove_all(dir);
}

TEST_CASE("job runner: training.compute float32 runs the oscillator twins in float32, notes the others") {
  // kGood with an identity device (the null setup, whose twin has no float32 kernel) between
  // the oscillators.
  std::string yaml = with("training: {epochs: 2, batch_size: 64}",
                          "training: {epochs: 1, batch_size: 64, compute: float32}");
  yaml = pnn::test::replaced(yaml, "network:\n", "  id: sim://null?inputs=64\nnetwork:\n");
  yaml = pnn::test::replaced(yaml, "  - pad: 10\n", "  - physical: id\n  - pad: 10\n");
  JobConfig c = parse_job_config(yaml, "t.yaml");
  CHECK(c.compute == pnn::digital_twin::Precision::kFloat32);
  std::vector<std::string> logs;
  JobCallbacks cb;
  cb.on_log = [&](const std::string& m) { logs.push_back(m); };
  const auto result = run_job(c, cb).value();
  CHECK(result.compute == "float32");
  CHECK(job_summary_json(c, result).find("\"compute\":\"float32\"") != std::string::npos);
  auto logged = [&](const std::string& part) {
    return std::any_of(logs.begin(), logs.end(), [&](const std::string& m) { return m.find(part) != std::string::npos; });
  };
  CHECK(logged("twin of osc-a (oscillators) computes in float32"));
  CHECK(logged("twin of osc-b (oscillators) computes in float32"));
  CHECK(logged("note: the twin of id (slice) has no float32 kernel and computes in float64"));
  const auto* pat = result.phase("pat");
  REQUIRE(pat != nullptr);
  CHECK(pat->acc_hardware > 0.3);  // it trained (digits, one epoch: far above chance)
}
