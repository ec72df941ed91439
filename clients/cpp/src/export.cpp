#include "pnn/client/export.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "pnn/common/atomic_write.hpp"
#include "pnn/common/bytes.hpp"
#include "pnn/common/hex.hpp"
#include "pnn/firmware_iface/crc32c.hpp"

namespace pnn::client {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kOverwriteHint =
    "export again with overwrite (pnnctl runs export --overwrite) to replace it, or choose "
    "another target";

std::string run_label(const v1::GetRunReply& run) {
  return "run " + std::to_string(run.run().run_id());
}

// Shortest text that reads back as the same double ("0.1", "1e-05", "nan", "inf").
std::string format_double(double v) {
  std::array<char, 64> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), r.ptr);
}

// ---- protobuf wire format: the few fields of event.proto and summary.proto we write --------

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, std::uint32_t field, std::uint32_t wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | wire_type);
}

void put_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_wall_time(std::string& out, double wall_time_s) {
  put_key(out, 1, 1);  // Event.wall_time: double, 64-bit
  common::ByteWriter<std::string>(out).f64(wall_time_s);
}

// ---- files ---------------------------------------------------------------------------------

// The target must be a directory or not exist yet under a directory this process may write.
void check_directory_target(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      throw ExportError(what + " " + dir.string() +
                        " exists and is not a directory; give a directory (it is created if "
                        "missing)");
    }
  }
  fs::path probe = fs::absolute(dir, ec);
  while (!probe.empty() && !fs::exists(probe, ec)) probe = probe.parent_path();
  if (!fs::is_directory(probe, ec)) {
    throw ExportError(what + " " + dir.string() + ": cannot be created: " + probe.string() +
                      " is not a directory; choose another path");
  }
  if (::access(probe.c_str(), W_OK | X_OK) != 0) {
    throw ExportError(what + " " + dir.string() + ": cannot be written: " + probe.string() + ": " +
                      std::strerror(errno) +
                      "; choose a directory you can write, or change its permissions");
  }
}

void create_directories(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw ExportError(what + ": cannot create the directory " + dir.string() + ": " + ec.message() +
                      "; choose a directory you can write");
  }
}

void write_atomic(const fs::path& path, std::string_view content) {
  try {
    common::write_file_atomic(path, content);
  } catch (const common::AtomicWriteError& e) {
    throw ExportError(e.what());
  }
}

// A file inside a fresh directory of ours (made whole, then renamed into place).
void write_plain(const fs::path& path, std::string_view content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  if (!f) {
    throw ExportError(path.string() + ": cannot write: " + std::strerror(errno) +
                      " (check that the directory is writable and has space)");
  }
}

// ---- TensorBoard -----------------------------------------------------------------------------

std::string local_host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf.data();
}

std::string tensorboard_suffix(const v1::GetRunReply& run) {
  return ".pnn-hil." + std::to_string(run.run().run_id());
}

fs::path tensorboard_run_dir(const v1::GetRunReply& run, const fs::path& dir) {
  return dir / ("run-" + std::to_string(run.run().run_id()));
}

// Our event files of this run in `run_dir` (any host, any start second).
std::vector<fs::path> existing_event_files(const v1::GetRunReply& run, const fs::path& run_dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return found;
  const std::string suffix = tensorboard_suffix(run);
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("events.out.tfevents.", 0) == 0 && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found.push_back(entry.path());
    }
  }
  return found;
}

void check_tensorboard(const v1::GetRunReply& run, const fs::path& dir,
                       const ExportOptions& options) {
  check_directory_target(dir, "--tensorboard");
  const auto existing = existing_event_files(run, tensorboard_run_dir(run, dir));
  if (!existing.empty() && !options.overwrite) {
    throw ExportError("--tensorboard: " + existing.front().string() + " is an earlier export of " +
                      run_label(run) + "; " + std::string(kOverwriteHint));
  }
}

fs::path write_tensorboard(const v1::GetRunReply& run, const fs::path& dir,
                           const ExportOptions& options) {
  const fs::path run_dir = tensorboard_run_dir(run, dir);
  create_directories(run_dir, "--tensorboard");
  const fs::path file =
      run_dir / tensorboard_file_name(run, options.host.empty() ? local_host_name() : options.host);
  write_atomic(file, tensorboard_events(run));
  // One writer per run directory: an earlier export under another name (another host or an
  // older start time) would show every curve twice.
  for (const auto& old : existing_event_files(run, run_dir)) {
    std::error_code ec;
    if (old != file) fs::remove(old, ec);
  }
  return file;
}

// ---- MLflow ----------------------------------------------------------------------------------

std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += "\\x" + common::hex_byte(u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// file:// URI of an absolute path, percent-encoding all but RFC 3986's unreserved and '/'.
std::string file_uri(const fs::path& path) {
  std::error_code ec;
  const std::string p = fs::absolute(path, ec).lexically_normal().string();
  std::string out = "file://";
  for (const char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%' + common::hex_byte(u);
    }
  }
  return out;
}

std::string yaml_scalar_unquoted(std::string v) {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.pop_back();
  if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return v;
}

// The id of an experiment called `name` already in `dir` (written by us or by MLflow, whose
// meta.yaml has a top-level "name: ..." line), so runs join it instead of a second experiment
// with the same name.
std::optional<std::string> find_experiment(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    std::ifstream meta(entry.path() / "meta.yaml");
    std::string line;
    while (std::getline(meta, line)) {
      if (line.rfind("name: ", 0) == 0 && yaml_scalar_unquoted(line.substr(6)) == name) {
        return entry.path().filename().string();
      }
    }
  }
  return std::nullopt;
}

std::string experiment_id_in(const fs::path& dir, const ExportOptions& options) {
  return find_experiment(dir, options.experiment)
      .value_or(mlflow_experiment_id(options.experiment));
}

std::int64_t to_ms(std::int64_t ns) { return ns / 1'000'000; }

std::string job_state_name(v1::JobState s) {
  const std::string& name = v1::JobState_Name(s);
  return name.empty() ? std::to_string(static_cast<int>(s)) : name;
}

void check_mlflow(const v1::GetRunReply& run, const fs::path& dir, const ExportOptions& options) {
  check_directory_target(dir, "--mlflow");
  if (options.experiment.empty()) {
    throw ExportError("--mlflow: the experiment name is empty; give one (default pnn-hil)");
  }
  const fs::path run_dir = dir / experiment_id_in(dir, options) / mlflow_run_uuid(run);
  std::error_code ec;
  if (fs::exists(run_dir, ec) && !options.overwrite) {
    throw ExportError("--mlflow: " + run_dir.string() + " is an earlier export of " +
                      run_label(run) + "; " + std::string(kOverwriteHint));
  }
}

void write_experiment_meta(const fs::path& exp_dir, const std::string& exp_id,
                           const std::string& name) {
  std::error_code ec;
  if (fs::exists(exp_dir / "meta.yaml", ec)) return;  // an existing experiment stays as it is
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  std::string meta;
  meta += "artifact_location: " + yaml_quote(file_uri(exp_dir)) + "\n";
  meta += "creation_time: " + std::to_string(now_ms) + "\n";
  meta += "experiment_id: " + yaml_quote(exp_id) + "\n";
  meta += "last_update_time: " + std::to_string(now_ms) + "\n";
  meta += "lifecycle_stage: active\n";
  meta += "name: " + yaml_quote(name) + "\n";
  write_atomic(exp_dir / "meta.yaml", meta);
}

std::string run_meta_yaml(const v1::GetRunReply& run, const fs::path& run_dir,
                          const std::string& exp_id, const std::string& uuid,
                          const std::string& run_name) {
  const auto& r = run.run();
  // The keys MLflow's FileStore writes (_make_persisted_run_info_dict), sorted as its
  // yaml.safe_dump sorts them; status is the RunStatus number.
  std::string m;
  m += "artifact_uri: " + yaml_quote(file_uri(run_dir / "artifacts")) + "\n";
  m += "deleted_time: null\n";
  m +=
      "end_time: " + (r.finished_ns() > 0 ? std::to_string(to_ms(r.finished_ns())) : "null") + "\n";
  m += "entry_point_name: \"\"\n";
  m += "experiment_id: " + yaml_quote(exp_id) + "\n";
  m += "lifecycle_stage: active\n";
  m += "run_id: " + yaml_quote(uuid) + "\n";
  m += "run_name: " + yaml_quote(run_name) + "\n";
  m += "run_uuid: " + yaml_quote(uuid) + "\n";
  m += "source_name: \"\"\n";
  m += "source_type: 4\n";  // SourceType.LOCAL
  m += "source_version: \"\"\n";
  m += "start_time: " + std::to_string(to_ms(r.started_ns())) + "\n";
  m += "status: " + std::to_string(mlflow_status(r.state())) + "\n";
  m += "tags: []\n";
  m += "user_id: \"\"\n";
  return m;
}

nlohmann::json parse_summary(const v1::GetRunReply& run) {
  if (run.run().summary_json().empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(run.run().summary_json(), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

bool is_final_metric(const std::string& key) {
  return key.rfind("acc_", 0) == 0 || key == "wall_s";
}

void write_mlflow_files(const v1::GetRunReply& run, const fs::path& dir, const std::string& exp_id,
                        const std::string& uuid, const fs::path& final_run_dir,
                        const ExportOptions& options) {
  const auto& r = run.run();
  const std::string run_name = r.name().empty() ? run_label(run) : r.name();
  create_directories(dir / "metrics", "--mlflow");
  create_directories(dir / "params", "--mlflow");
  create_directories(dir / "tags", "--mlflow");
  create_directories(dir / "artifacts", "--mlflow");
  write_plain(dir / "meta.yaml", run_meta_yaml(run, final_run_dir, exp_id, uuid, run_name));

  // One file per metric key, its points in step order (the store's order).
  std::vector<std::pair<std::string, std::string>> metric_files;
  for (const auto& p : scalar_points(run)) {
    auto it = std::find_if(metric_files.begin(), metric_files.end(),
                           [&](const auto& f) { return f.first == p.tag; });
    if (it == metric_files.end()) it = metric_files.insert(metric_files.end(), {p.tag, ""});
    it->second += std::to_string(static_cast<std::int64_t>(std::llround(p.wall_time_s * 1000.0))) +
                  " " + format_double(p.value) + " " + std::to_string(p.step) + "\n";
  }
  for (const auto& [key, lines] : metric_files) {
    const fs::path path = dir / "metrics" / key;  // "pat/train_loss": MLflow reads subfolders
    create_directories(path.parent_path(), "--mlflow");
    write_plain(path, lines);
  }

  const auto summary = parse_summary(run);
  for (const auto& [key, value] : summary.items()) {
    if (is_final_metric(key)) continue;
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      text = value.dump();
    } else if (value.is_array() && !value.empty() &&
               std::all_of(value.begin(), value.end(),
                           [](const auto& v) { return v.is_string(); })) {
      for (const auto& v : value) text += (text.empty() ? "" : ",") + v.get<std::string>();
    } else {
      continue;  // phases (the curves, already metrics) and calibration (a table)
    }
    write_plain(dir / "params" / key, text);
  }

  std::string serials;
  for (const auto& s : r.device_serials()) serials += (serials.empty() ? "" : " ") + s;
  std::vector<std::pair<std::string, std::string>> tags = {
      {"mlflow.runName", run_name},
      {"mlflow.source.name", options.source.empty() ? "pnnd" : options.source},
      {"mlflow.source.type", "LOCAL"},
      {"pnn.run_id", std::to_string(r.run_id())},
      {"pnn.state", job_state_name(r.state())},
      {"pnn.device_serials", serials},
  };
  if (!r.message().empty()) tags.emplace_back("pnn.message", r.message());
  if (!r.checkpoint_path().empty()) tags.emplace_back("pnn.checkpoint_path", r.checkpoint_path());
  for (const auto& [key, value] : tags) write_plain(dir / "tags" / key, value);
}

fs::path write_mlflow(const v1::GetRunReply& run, const fs::path& dir,
                      const ExportOptions& options) {
  const std::string exp_id = experiment_id_in(dir, options);
  const std::string uuid = mlflow_run_uuid(run);
  const fs::path exp_dir = dir / exp_id;
  const fs::path run_dir = exp_dir / uuid;
  create_directories(exp_dir, "--mlflow");
  write_experiment_meta(exp_dir, exp_id, options.experiment);
  // Built whole beside the run's directory, then renamed into place: a re-export replaces the
  // run (no duplicated metric lines) and a failure leaves the earlier export as it was.
  const std::string tmp_prefix = ".pnn-export-" + uuid + ".";
  const fs::path tmp = exp_dir / (tmp_prefix + std::to_string(::getpid()));
  std::error_code ec;
  // Leftovers of an export that was killed half-way (MLflow would list them as broken runs).
  for (const auto& entry : fs::directory_iterator(exp_dir, ec)) {
    if (entry.path().filename().string().rfind(tmp_prefix, 0) == 0) {
      fs::remove_all(entry.path(), ec);
    }
  }
  try {
    create_directories(tmp, "--mlflow");
    write_mlflow_files(run, tmp, exp_id, uuid, run_dir, options);
    fs::remove_all(run_dir, ec);
    if (ec) {
      throw ExportError("--mlflow: cannot replace " + run_dir.string() + ": " + ec.message());
    }
    fs::rename(tmp, run_dir, ec);
    if (ec) {
      throw ExportError("--mlflow: cannot move " + tmp.string() + " to " + run_dir.string() + ": " +
                        ec.message());
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return run_dir;
}

// ---- CSV ---------------------------------------------------------------------------------------

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void check_csv(const v1::GetRunReply& run, const fs::path& file, const ExportOptions& options) {
  std::error_code ec;
  if (fs::is_directory(file, ec)) {
    throw ExportError("--csv " + file.string() + " is a directory; give a file name");
  }
  if (fs::exists(file, ec) && !options.overwrite) {
    throw ExportError("--csv " + file.string() + " exists (an earlier export of " + run_label(run) +
                      "?); " + std::string(kOverwriteHint));
  }
  const fs::path parent = file.has_parent_path() ? file.parent_path() : fs::path(".");
  check_directory_target(parent, "--csv");
}

boost::uuids::uuid uuid5_url(const std::string& name) {
  boost::uuids::name_generator_sha1 gen(boost::uuids::ns::url());
  return gen(name);
}

}  // namespace

// ---- public ------------------------------------------------------------------------------------

std::vector<ScalarPoint> scalar_points(const v1::GetRunReply& run) {
  std::vector<ScalarPoint> points;
  points.reserve(static_cast<std::size_t>(run.metrics_size()) * 4 + 8);
  double t = static_cast<double>(run.run().started_ns()) / 1e9;
  std::int64_t last_epoch = 0;
  for (const auto& m : run.metrics()) {
    if (std::isfinite(m.seconds()) && m.seconds() > 0) t += m.seconds();
    const std::string prefix = m.phase() + "/";
    const auto step = static_cast<std::int64_t>(m.epoch());
    last_epoch = std::max(last_epoch, step);
    points.push_back({prefix + "train_loss", step, t, m.train_loss()});
    points.push_back({prefix + "train_accuracy", step, t, m.train_accuracy()});
    if (m.test_accuracy() >= 0)
      points.push_back({prefix + "test_accuracy", step, t, m.test_accuracy()});
    points.push_back({prefix + "epoch_seconds", step, t, m.seconds()});
  }
  const double t_end =
      run.run().finished_ns() > 0 ? static_cast<double>(run.run().finished_ns()) / 1e9 : t;
  const auto summary = parse_summary(run);  // named: items() does not keep a temporary alive
  for (const auto& [key, value] : summary.items()) {
    if (is_final_metric(key) && value.is_number()) {
      points.push_back({"final/" + key, last_epoch, t_end, value.get<double>()});
    }
  }
  return points;
}

std::uint32_t masked_crc32c(std::span<const std::uint8_t> data) noexcept {
  const std::uint32_t crc = firmware_iface::crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void append_tfrecord(std::string& out, std::string_view data) {
  const auto bytes = [](std::string_view s) {
    return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  common::ByteWriter<std::string> w(out);
  const std::size_t length_at = out.size();
  w.u64(data.size());
  w.u32(masked_crc32c(bytes(std::string_view(out).substr(length_at, 8))));
  w.bytes(data.data(), data.size());
  w.u32(masked_crc32c(bytes(data)));
}

std::string encode_file_version_event(double wall_time_s, std::string_view file_version) {
  std::string event;
  put_wall_time(event, wall_time_s);
  put_bytes_field(event, 3, file_version);  // Event.file_version
  return event;
}

std::string encode_scalar_event(double wall_time_s, std::int64_t step, std::string_view tag,
                                float value) {
  std::string v;
  put_bytes_field(v, 1, tag);  // Summary.Value.tag
  put_key(v, 2, 5);            // Summary.Value.simple_value: float, 32-bit
  common::ByteWriter<std::string>(v).f32(value);
  std::string summary;
  put_bytes_field(summary, 1, v);  // Summary.value (repeated)
  std::string event;
  put_wall_time(event, wall_time_s);
  if (step != 0) {
    put_key(event, 2, 0);  // Event.step: int64 varint (two's complement for negatives)
    put_varint(event, static_cast<std::uint64_t>(step));
  }
  put_bytes_field(event, 5, summary);  // Event.summary
  return event;
}

std::string tensorboard_events(const v1::GetRunReply& run) {
  const auto points = scalar_points(run);
  std::string out;
  out.reserve(64 + points.size() * 64);
  append_tfrecord(out, encode_file_version_event(static_cast<double>(run.run().started_ns()) / 1e9,
                                                 "brain.Event:2"));
  for (const auto& p : points) {
    append_tfrecord(out,
                    encode_scalar_event(p.wall_time_s, p.step, p.tag, static_cast<float>(p.value)));
  }
  return out;
}

std::string tensorboard_file_name(const v1::GetRunReply& run, const std::string& host) {
  return "events.out.tfevents." + std::to_string(run.run().started_ns() / 1'000'000'000) + "." +
         host + tensorboard_suffix(run);
}

std::string mlflow_run_uuid(const v1::GetRunReply& run) {
  const auto id = uuid5_url("pnn-hil:run:" + std::to_string(run.run().run_id()) + ":" +
                            std::to_string(run.run().started_ns()));
  return common::to_hex(std::string_view(reinterpret_cast<const char*>(id.data), id.size()));
}

std::string mlflow_experiment_id(const std::string& name) {
  const auto id = uuid5_url("pnn-hil:experiment:" + name);
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | id.data[i];
  return std::to_string(v & 0x7FFF'FFFF'FFFF'FFFFull);
}

int mlflow_status(v1::JobState state) {
  switch (state) {
    case v1::RUNNING:
      return 1;
    case v1::QUEUED:
      return 2;
    case v1::SUCCEEDED:
      return 3;
    case v1::CANCELLED:
      return 5;
    case v1::FAILED:
    case v1::ABORTED:
      return 4;
    default:
      return 1;
  }
}

std::string metrics_csv(const v1::GetRunReply& run) {
  std::string out = "phase,epoch,train_loss,train_accuracy,test_accuracy,seconds\n";
  for (const auto& m : run.metrics()) {
    out += csv_field(m.phase()) + "," + std::to_string(m.epoch()) + "," +
           format_double(m.train_loss()) + "," + format_double(m.train_accuracy()) + "," +
           (m.test_accuracy() >= 0 ? format_double(m.test_accuracy()) : "") + "," +
           format_double(m.seconds()) + "\n";
  }
  return out;
}

std::vector<fs::path> export_run(const v1::GetRunReply& run, const ExportTargets& targets,
                                 const ExportOptions& options) {
  if (targets.tensorboard_dir.empty() && targets.mlflow_dir.empty() && targets.csv_file.empty()) {
    throw ExportError("nothing to export to: give --tensorboard DIR, --mlflow DIR or --csv FILE");
  }
  if (!targets.tensorboard_dir.empty()) check_tensorboard(run, targets.tensorboard_dir, options);
  if (!targets.mlflow_dir.empty()) check_mlflow(run, targets.mlflow_dir, options);
  if (!targets.csv_file.empty()) check_csv(run, targets.csv_file, options);
  std::vector<fs::path> written;
  if (!targets.tensorboard_dir.empty()) {
    written.push_back(write_tensorboard(run, targets.tensorboard_dir, options));
  }
  if (!targets.mlflow_dir.empty())
    written.push_back(write_mlflow(run, targets.mlflow_dir, options));
  if (!targets.csv_file.empty()) {
    write_atomic(targets.csv_file, metrics_csv(run));
    written.push_back(targets.csv_file);
  }
  return written;
}

}  // namespace pnn::client
