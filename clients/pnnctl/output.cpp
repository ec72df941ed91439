#include "output.hpp"

#include <google/protobuf/descriptor.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "errors.hpp"
#include "pnn/drivers/device_spec.hpp"
#include "remote.hpp"

namespace pnnctl {

namespace {

namespace pb = google::protobuf;
using nlohmann::json;

json field_value(const pb::Message& m, const pb::Reflection& r, const pb::FieldDescriptor& f,
                 int index) {
  const bool rep = index >= 0;
  switch (f.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r.GetRepeatedInt32(m, &f, index) : r.GetInt32(m, &f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return rep ? r.GetRepeatedInt64(m, &f, index) : r.GetInt64(m, &f);
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r.GetRepeatedUInt32(m, &f, index) : r.GetUInt32(m, &f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r.GetRepeatedUInt64(m, &f, index) : r.GetUInt64(m, &f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r.GetRepeatedDouble(m, &f, index) : r.GetDouble(m, &f);
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r.GetRepeatedFloat(m, &f, index) : r.GetFloat(m, &f);
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r.GetRepeatedBool(m, &f, index) : r.GetBool(m, &f);
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r.GetRepeatedEnum(m, &f, index) : r.GetEnum(m, &f))->name();
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = rep ? r.GetRepeatedString(m, &f, index) : r.GetString(m, &f);
      if (f.type() == pb::FieldDescriptor::TYPE_BYTES) return to_hex(s);
      const std::string& name = f.name();
      if (name.size() > 5 && name.compare(name.size() - 5, 5, "_json") == 0 && !s.empty()) {
        json parsed = json::parse(s, nullptr, false);
        if (!parsed.is_discarded()) return parsed;
      }
      return s;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return to_json(rep ? r.GetRepeatedMessage(m, &f, index) : r.GetMessage(m, &f));
  }
  return nullptr;
}

std::string pct(const json& v) {
  if (!v.is_number() || v.get<double>() < 0) return "     -";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.2f %%", v.get<double>() * 100.0);
  return buf;
}

}  // namespace

json to_json(const pb::Message& message) {
  json out = json::object();
  const pb::Descriptor& d = *message.GetDescriptor();
  const pb::Reflection& r = *message.GetReflection();
  for (int i = 0; i < d.field_count(); ++i) {
    const pb::FieldDescriptor& f = *d.field(i);
    if (f.is_repeated()) {
      json arr = json::array();
      for (int k = 0; k < r.FieldSize(message, &f); ++k)
        arr.push_back(field_value(message, r, f, k));
      out[f.name()] = std::move(arr);
    } else if ((f.containing_oneof() != nullptr || f.message_type() != nullptr) &&
               !r.HasField(message, &f)) {
      continue;
    } else {
      out[f.name()] = field_value(message, r, f, -1);
    }
  }
  return out;
}

void print_json_line(const json& j) {
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
}

std::string state_name(pnn::v1::Lifecycle s) { return pnn::v1::Lifecycle_Name(s); }

std::string health_name(pnn::v1::Health h) {
  std::string n = pnn::v1::Health_Name(h);
  return n.rfind("HEALTH_", 0) == 0 ? n.substr(7) : n;
}

std::string job_state_name(pnn::v1::JobState s) { return pnn::v1::JobState_Name(s); }

std::uint64_t parse_id(const std::string& text, const std::string& what, const std::string& kind,
                       const std::string& listing) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || v == 0 || text[0] == '-') {
    throw UsageError(what + ": '" + text + "' is not a " + kind +
                     " id (a positive integer; see " + listing + ")");
  }
  return v;
}

std::string format_time_ns(std::int64_t ns) {
  if (ns == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string describe_spec(const pnn::v1::DeviceSpec& s) {
  pnn::drivers::DeviceSpec spec;
  spec.kind = s.kind();
  spec.model = s.model();
  spec.serial = s.serial();
  spec.firmware = s.firmware();
  spec.num_inputs = s.num_inputs();
  spec.num_outputs = s.num_outputs();
  spec.input_unit = s.input_unit();
  spec.output_unit = s.output_unit();
  spec.input_min = s.input_min();
  spec.input_max = s.input_max();
  for (const auto& p : s.params()) {
    spec.params.push_back({p.name(), static_cast<pnn::Index>(p.count()), p.unit(), p.hard_min(),
                           p.hard_max(), p.description()});
  }
  spec.output_noise_std = s.output_noise_std();
  spec.max_batch = s.max_batch();
  return spec.describe();
}

void print_summary(const json& j) {
  auto str = [&](const char* key) { return j.contains(key) ? j[key].get<std::string>() : ""; };
  std::printf("\n%s on %s (split %s), devices:", str("name").c_str(), str("dataset").c_str(),
              str("split").c_str());
  for (const auto& s : j.value("devices", json::array())) {
    std::printf(" %s", s.get<std::string>().c_str());
  }
  std::printf("\n");
  for (const auto& p : j.value("phases", json::array())) {
    const std::string phase = p.value("phase", "");
    // Every rule's phase is named after the rule (pat, in-silico, spsa, ep, ...); "digital" is
    // the MLP baseline.
    const std::string what = phase == "digital" ? "digital baseline (MLP)"
                             : phase == "pat"   ? "PAT-trained, measured on the hardware"
                                                : phase + "-trained, measured on the hardware";
    const json acc =
        phase == "digital" ? p.value("acc_twin", json()) : p.value("acc_hardware", json());
    std::printf("  %-46s %s   (on twin %s, %.1f s)\n", what.c_str(), pct(acc).c_str(),
                pct(p.value("acc_twin", json())).c_str(), p.value("seconds", 0.0));
  }
  if (!str("checkpoint").empty()) std::printf("  checkpoint: %s\n", str("checkpoint").c_str());
  if (!str("plot").empty()) std::printf("  plot:       %s\n", str("plot").c_str());
  std::printf("  wall time %.1f s on %d threads\n", j.value("wall_s", 0.0), j.value("threads", 1));
  std::fflush(stdout);
}

}  // namespace pnnctl
