// The run exports (pnn/client/export.hpp). The event encoding is read back with the protobuf
// library's own parser, from a descriptor built here with TensorBoard's field numbers, not with
// the writer's code; the CRC and UUID expectations were computed by an independent (bitwise,
// Python) implementation. tests/clients/test_export.py reads the files of a real daemon's runs.
#include "pnn/client/export.hpp"

#include <doctest/doctest.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "pnn/common/bytes.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
namespace v1 = pnn::v1;
using pnn::client::ExportError;
using pnn::client::ExportOptions;
using pnn::client::ExportTargets;

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// A run as GetRun returns it: `epochs` epochs of each phase, test accuracy on even epochs only.
v1::GetRunReply make_run(std::uint64_t run_id, std::vector<std::string> phases, int epochs) {
  v1::GetRunReply run;
  auto* r = run.mutable_run();
  r->set_run_id(run_id);
  r->set_name("osc-pat");
  r->set_state(v1::SUCCEEDED);
  r->set_started_ns(1'700'000'000'123'456'789);
  r->set_finished_ns(1'700'000'100'000'000'000);
  r->add_device_serials("SIM-OSC-1");
  r->add_device_serials("SIM-POW-2");
  r->set_summary_json(
      R"({"name":"osc-pat","dataset":"digits","seed":3,"epochs":2,"devices":["SIM-OSC-1","SIM-POW-2"],)"
      R"("acc_pat_reality":0.875,"wall_s":12.5,"calibration":[],"phases":[]})");
  for (const auto& phase : phases) {
    for (int e = 1; e <= epochs; ++e) {
      auto* m = run.add_metrics();
      m->set_phase(phase);
      m->set_epoch(static_cast<std::uint32_t>(e));
      m->set_train_loss(1.0 / e);
      m->set_train_accuracy(0.5 + 0.4 * e / epochs);
      m->set_test_accuracy(e % 2 == 0 ? 0.5 + 0.25 * e / epochs : -1.0);
      m->set_seconds(0.25);
    }
  }
  return run;
}

// TensorBoard's Event / Summary / Summary.Value, only the fields the export writes, with the
// field numbers of tensorboard/compat/proto/event.proto and summary.proto.
class EventParser {
 public:
  EventParser() {
    google::protobuf::FileDescriptorProto f;
    f.set_name("pnn_test_tb_event.proto");
    f.set_package("pnntest");
    f.set_syntax("proto3");
    using FD = google::protobuf::FieldDescriptorProto;
    auto field = [](google::protobuf::DescriptorProto* m, const char* name, int number,
                    FD::Type type, const char* type_name = nullptr, bool repeated = false) {
      auto* fd = m->add_field();
      fd->set_name(name);
      fd->set_number(number);
      fd->set_type(type);
      fd->set_label(repeated ? FD::LABEL_REPEATED : FD::LABEL_OPTIONAL);
      if (type_name) fd->set_type_name(type_name);
    };
    auto* value = f.add_message_type();
    value->set_name("Value");
    field(value, "tag", 1, FD::TYPE_STRING);
    field(value, "simple_value", 2, FD::TYPE_FLOAT);
    auto* summary = f.add_message_type();
    summary->set_name("Summary");
    field(summary, "value", 1, FD::TYPE_MESSAGE, ".pnntest.Value", true);
    auto* event = f.add_message_type();
    event->set_name("Event");
    field(event, "wall_time", 1, FD::TYPE_DOUBLE);
    field(event, "step", 2, FD::TYPE_INT64);
    field(event, "file_version", 3, FD::TYPE_STRING);
    field(event, "summary", 5, FD::TYPE_MESSAGE, ".pnntest.Summary");
    REQUIRE(pool_.BuildFile(f) != nullptr);
    event_ = pool_.FindMessageTypeByName("pnntest.Event");
    REQUIRE(event_ != nullptr);
  }

  struct Parsed {
    double wall_time = 0;
    std::int64_t step = 0;
    std::string file_version;
    std::vector<std::pair<std::string, float>> values;
  };

  Parsed parse(const std::string& bytes) {
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(event_)->New());
    REQUIRE(m->ParseFromString(bytes));
    const auto* refl = m->GetReflection();
    Parsed p;
    p.wall_time = refl->GetDouble(*m, event_->FindFieldByName("wall_time"));
    p.step = refl->GetInt64(*m, event_->FindFieldByName("step"));
    p.file_version = refl->GetString(*m, event_->FindFieldByName("file_version"));
    const auto* summary_field = event_->FindFieldByName("summary");
    if (refl->HasField(*m, summary_field)) {
      const auto& s = refl->GetMessage(*m, summary_field);
      const auto* sd = s.GetDescriptor();
      const auto* vf = sd->FindFieldByName("value");
      for (int i = 0; i < s.GetReflection()->FieldSize(s, vf); ++i) {
        const auto& v = s.GetReflection()->GetRepeatedMessage(s, vf, i);
        const auto* vd = v.GetDescriptor();
        p.values.emplace_back(v.GetReflection()->GetString(v, vd->FindFieldByName("tag")),
                              v.GetReflection()->GetFloat(v, vd->FindFieldByName("simple_value")));
      }
    }
    return p;
  }

 private:
  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_{&pool_};
  const google::protobuf::Descriptor* event_ = nullptr;
};

// The records of a TFRecord file, each CRC checked (REQUIREd).
std::vector<std::string> read_tfrecords(const std::string& file) {
  std::vector<std::string> records;
  std::size_t at = 0;
  while (at < file.size()) {
    REQUIRE(file.size() - at >= 12);
    const auto length = pnn::common::load_le<std::uint64_t>(file.data() + at);
    const auto length_crc = pnn::common::load_le<std::uint32_t>(file.data() + at + 8);
    REQUIRE(length_crc ==
            pnn::client::masked_crc32c(as_bytes(std::string_view(file).substr(at, 8))));
    REQUIRE(file.size() - at - 12 >= length + 4);
    const std::string data = file.substr(at + 12, length);
    const auto data_crc = pnn::common::load_le<std::uint32_t>(file.data() + at + 12 + length);
    REQUIRE(data_crc == pnn::client::masked_crc32c(as_bytes(data)));
    records.push_back(data);
    at += 12 + length + 4;
  }
  return records;
}

fs::path only_file_in(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  REQUIRE(files.size() == 1);
  return files.front();
}

}  // namespace

TEST_CASE("export: masked CRC-32C of known vectors") {
  // crc32c("123456789") = 0xE3069283; masked ((c >> 15) | (c << 17)) + 0xa282ead8, computed by a
  // bitwise implementation outside this code base.
  CHECK(pnn::client::masked_crc32c(as_bytes("123456789")) == 0xC78AB0E5u);
  CHECK(pnn::client::masked_crc32c({}) == 0xA282EAD8u);
  const std::string zero_length(8, '\0');
  CHECK(pnn::client::masked_crc32c(as_bytes(zero_length)) == 0x07980329u);
}

TEST_CASE("export: TFRecord framing of one record") {
  std::string out;
  pnn::client::append_tfrecord(out, "abc");
  REQUIRE(out.size() == 8 + 4 + 3 + 4);
  CHECK(pnn::common::load_le<std::uint64_t>(out.data()) == 3u);
  CHECK(out.substr(12, 3) == "abc");
  CHECK(read_tfrecords(out) == std::vector<std::string>{"abc"});
  // A flipped data bit no longer matches its CRC.
  std::string corrupt = out;
  corrupt[13] ^= 0x01;
  CHECK(pnn::common::load_le<std::uint32_t>(corrupt.data() + 15) !=
        pnn::client::masked_crc32c(as_bytes(std::string_view(corrupt).substr(12, 3))));
}

TEST_CASE("export: the hand-written Event encoding parses with TensorBoard's field numbers") {
  EventParser parser;
  const auto version = parser.parse(pnn::client::encode_file_version_event(1.5, "brain.Event:2"));
  CHECK(version.wall_time == 1.5);
  CHECK(version.file_version == "brain.Event:2");
  CHECK(version.values.empty());
  const auto scalar = parser.parse(
      pnn::client::encode_scalar_event(1.7e9 + 0.25, 1234567, "pat/train_loss", 0.125f));
  CHECK(scalar.wall_time == 1.7e9 + 0.25);
  CHECK(scalar.step == 1234567);
  REQUIRE(scalar.values.size() == 1);
  CHECK(scalar.values[0].first == "pat/train_loss");
  CHECK(scalar.values[0].second == 0.125f);
  const auto nan = parser.parse(pnn::client::encode_scalar_event(0, 0, "x", std::nanf("")));
  CHECK(std::isnan(nan.values.at(0).second));
}

TEST_CASE("export: scalar points per epoch, test accuracy -1 left out, final summary values") {
  const auto run = make_run(7, {"in-silico", "pat"}, 4);
  const auto points = pnn::client::scalar_points(run);
  // Per phase: 4 epochs × (loss, train acc, seconds) + 2 epochs with a test accuracy; then
  // final/acc_pat_reality and final/wall_s.
  CHECK(points.size() == 2 * (4 * 3 + 2) + 2);
  CHECK(points[0].tag == "in-silico/train_loss");
  CHECK(points[0].step == 1);
  CHECK(points[0].wall_time_s == doctest::Approx(1'700'000'000.123456789 + 0.25));
  // The time of a point is the start plus the durations of the epochs up to it (all phases).
  const auto& last_pat = points[points.size() - 3];
  CHECK(last_pat.tag == "pat/epoch_seconds");
  CHECK(last_pat.wall_time_s == doctest::Approx(1'700'000'000.123456789 + 8 * 0.25));
  for (const auto& p : points) {
    if (p.tag == "in-silico/test_accuracy") CHECK(p.step % 2 == 0);
  }
  CHECK(points[points.size() - 2].tag == "final/acc_pat_reality");
  CHECK(points[points.size() - 2].value == 0.875);
  CHECK(points[points.size() - 2].step == 4);
  CHECK(points.back().tag == "final/wall_s");
  CHECK(points.back().wall_time_s == doctest::Approx(1'700'000'100.0));
}

TEST_CASE("export: a TensorBoard file of over 10,000 points reads back record by record") {
  pnn::test::TempDir dir("pnn-export-tb");
  // 2 × 1,430 epochs, 7 points per 2 epochs (one test accuracy), and 2 final values.
  const auto run = make_run(42, {"pat", "in-silico"}, 1430);
  const auto points = pnn::client::scalar_points(run);
  REQUIRE(points.size() == 10'012);
  ExportOptions options;
  options.host = "labhost";
  const auto written = pnn::client::export_run(run, {.tensorboard_dir = dir.path()}, options);
  REQUIRE(written.size() == 1);
  CHECK(written[0] == dir.path() / "run-42" / "events.out.tfevents.1700000000.labhost.pnn-hil.42");
  const auto records = read_tfrecords(read_file(written[0]));
  REQUIRE(records.size() == points.size() + 1);
  EventParser parser;
  CHECK(parser.parse(records[0]).file_version == "brain.Event:2");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto e = parser.parse(records[i + 1]);
    REQUIRE(e.values.size() == 1);
    REQUIRE(e.values[0].first == points[i].tag);
    REQUIRE(e.step == points[i].step);
    REQUIRE(e.values[0].second == static_cast<float>(points[i].value));
    REQUIRE(e.wall_time == points[i].wall_time_s);
  }
}

TEST_CASE("export: re-export replaces the event file, never a second writer per run") {
  pnn::test::TempDir dir("pnn-export-tb-again");
  const auto run = make_run(5, {"pat"}, 3);
  ExportOptions options;
  options.host = "first";
  pnn::client::export_run(run, {.tensorboard_dir = dir.path()}, options);
  try {
    pnn::client::export_run(run, {.tensorboard_dir = dir.path()}, options);
    FAIL("a second export without overwrite was accepted");
  } catch (const ExportError& e) {
    const std::string what = e.what();
    CHECK(what.find("earlier export of run 5") != std::string::npos);
    CHECK(what.find("--overwrite") != std::string::npos);
  }
  options.overwrite = true;
  options.host = "second";  // another machine: another file name, and the old one goes
  pnn::client::export_run(run, {.tensorboard_dir = dir.path()}, options);
  const auto file = only_file_in(dir.path() / "run-5");
  CHECK(file.filename() == "events.out.tfevents.1700000000.second.pnn-hil.5");
  CHECK(read_tfrecords(read_file(file)).size() == pnn::client::scalar_points(run).size() + 1);
}

TEST_CASE("export: MLflow file store layout, deterministic ids, idempotent re-export") {
  pnn::test::TempDir dir("pnn-export-mlflow");
  const auto run = make_run(7, {"pat"}, 4);
  // Expected ids: Python's uuid.uuid5(uuid.NAMESPACE_URL, name).
  CHECK(pnn::client::mlflow_run_uuid(run) == "51b1229df24a5e0a9d7d03250f784277");
  CHECK(pnn::client::mlflow_experiment_id("pnn-hil") == "8100718245842408236");
  ExportOptions options;
  options.source = "pnnd at tcp://127.0.0.1:7700";
  const auto written = pnn::client::export_run(run, {.mlflow_dir = dir.path()}, options);
  const fs::path exp_dir = dir.path() / "8100718245842408236";
  const fs::path run_dir = exp_dir / "51b1229df24a5e0a9d7d03250f784277";
  REQUIRE(written == std::vector<fs::path>{run_dir});

  const auto exp_meta = read_file(exp_dir / "meta.yaml");
  CHECK(exp_meta.find("experiment_id: \"8100718245842408236\"\n") != std::string::npos);
  CHECK(exp_meta.find("name: \"pnn-hil\"\n") != std::string::npos);
  CHECK(exp_meta.find("lifecycle_stage: active\n") != std::string::npos);
  CHECK(exp_meta.find("artifact_location: \"file://" + exp_dir.string() + "\"\n") !=
        std::string::npos);

  const auto meta = read_file(run_dir / "meta.yaml");
  for (const std::string line :
       {"run_id: \"51b1229df24a5e0a9d7d03250f784277\"",
        "run_uuid: \"51b1229df24a5e0a9d7d03250f784277\"", "run_name: \"osc-pat\"", "status: 3",
        "start_time: 1700000000123", "end_time: 1700000100000", "lifecycle_stage: active",
        "source_type: 4", "tags: []"}) {
    CHECK_MESSAGE(meta.find(line + "\n") != std::string::npos, line);
  }
  const auto loss = lines_of(read_file(run_dir / "metrics" / "pat" / "train_loss"));
  REQUIRE(loss.size() == 4);
  CHECK(loss[0] == "1700000000373 1 1");  // start + 0.25 s, value 1.0, step 1
  CHECK(loss[1] == "1700000000623 0.5 2");
  CHECK(lines_of(read_file(run_dir / "metrics" / "pat" / "test_accuracy")).size() == 2);
  CHECK(read_file(run_dir / "metrics" / "final" / "acc_pat_reality") == "1700000100000 0.875 4\n");
  CHECK(read_file(run_dir / "params" / "dataset") == "digits");
  CHECK(read_file(run_dir / "params" / "seed") == "3");
  CHECK(read_file(run_dir / "params" / "devices") == "SIM-OSC-1,SIM-POW-2");
  CHECK_FALSE(fs::exists(run_dir / "params" / "phases"));
  CHECK(read_file(run_dir / "tags" / "mlflow.runName") == "osc-pat");
  CHECK(read_file(run_dir / "tags" / "mlflow.source.name") == "pnnd at tcp://127.0.0.1:7700");
  CHECK(read_file(run_dir / "tags" / "pnn.device_serials") == "SIM-OSC-1 SIM-POW-2");
  CHECK(fs::is_directory(run_dir / "artifacts"));

  CHECK_THROWS_AS(pnn::client::export_run(run, {.mlflow_dir = dir.path()}, options), ExportError);
  options.overwrite = true;
  // What an export killed half-way leaves: removed by the next one.
  fs::create_directories(exp_dir / ".pnn-export-51b1229df24a5e0a9d7d03250f784277.999999" /
                         "metrics");
  pnn::client::export_run(run, {.mlflow_dir = dir.path()}, options);
  CHECK(lines_of(read_file(run_dir / "metrics" / "pat" / "train_loss")).size() == 4);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(exp_dir)) entries.push_back(e.path().filename());
  std::sort(entries.begin(), entries.end());
  CHECK(entries == std::vector<std::string>{"51b1229df24a5e0a9d7d03250f784277", "meta.yaml"});
}

TEST_CASE("export: an MLflow experiment of the same name already in the store is joined") {
  pnn::test::TempDir dir("pnn-export-mlflow-join");
  fs::create_directories(dir.path() / "123");
  std::ofstream(dir.path() / "123" / "meta.yaml")
      << "artifact_location: file:///x/123\nexperiment_id: '123'\nname: lab runs\n";
  ExportOptions options;
  options.experiment = "lab runs";
  const auto written =
      pnn::client::export_run(make_run(3, {"pat"}, 2), {.mlflow_dir = dir.path()}, options);
  CHECK(written.at(0).parent_path() == dir.path() / "123");
  CHECK(read_file(dir.path() / "123" / "meta.yaml").find("file:///x/123") != std::string::npos);
}

TEST_CASE("export: MLflow status numbers of the job states") {
  CHECK(pnn::client::mlflow_status(v1::RUNNING) == 1);
  CHECK(pnn::client::mlflow_status(v1::QUEUED) == 2);
  CHECK(pnn::client::mlflow_status(v1::SUCCEEDED) == 3);
  CHECK(pnn::client::mlflow_status(v1::FAILED) == 4);
  CHECK(pnn::client::mlflow_status(v1::ABORTED) == 4);
  CHECK(pnn::client::mlflow_status(v1::CANCELLED) == 5);
}

TEST_CASE("export: CSV rows, no test accuracy as an empty field, quoted phase names") {
  auto run = make_run(9, {"pat"}, 2);
  run.mutable_metrics(0)->set_phase("odd,\"name\"");
  CHECK(pnn::client::metrics_csv(run) ==
        "phase,epoch,train_loss,train_accuracy,test_accuracy,seconds\n"
        "\"odd,\"\"name\"\"\",1,1,0.7,,0.25\n"
        "pat,2,0.5,0.9,0.75,0.25\n");
}

TEST_CASE("export: bad targets are refused before anything is written") {
  pnn::test::TempDir dir("pnn-export-bad");
  const auto run = make_run(11, {"pat"}, 2);
  std::ofstream(dir.file("plain")) << "x";
  try {
    pnn::client::export_run(run, {.tensorboard_dir = dir.path() / "plain" / "tb"});
    FAIL("a directory under a file was accepted");
  } catch (const ExportError& e) {
    CHECK(std::string(e.what()).find("is not a directory") != std::string::npos);
  }
  CHECK_THROWS_AS(pnn::client::export_run(run, {.mlflow_dir = dir.path() / "plain"}), ExportError);
  CHECK_THROWS_AS(pnn::client::export_run(run, {}), ExportError);
  // The CSV exists: the TensorBoard export given with it is not written either.
  try {
    pnn::client::export_run(run,
                            {.tensorboard_dir = dir.path() / "tb", .csv_file = dir.file("plain")});
    FAIL("an existing CSV was overwritten");
  } catch (const ExportError& e) {
    CHECK(std::string(e.what()).find("exists") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir.path() / "tb"));
  CHECK(read_file(dir.file("plain")) == "x");
}
