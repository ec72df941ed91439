#pragma once
// Output helpers of the remote verbs: any API message as JSON (by reflection, so every field of
// pnn.proto appears under its own name), and the human-readable forms of devices, jobs and runs.
#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <string>

#include "pnn/proto/wire.hpp"

namespace pnnctl {

/// Every set field under its proto name; 64-bit integers as JSON numbers, enums by name, bytes
/// as hex, `*_json` string fields parsed into JSON, unset oneof members and messages left out.
nlohmann::json to_json(const google::protobuf::Message& message);

/// Prints one JSON object on its own line on stdout (flushed).
void print_json_line(const nlohmann::json& j);

/// "ACTIVE" for v1::ACTIVE etc.
std::string state_name(pnn::v1::Lifecycle s);
std::string health_name(pnn::v1::Health h);
std::string job_state_name(pnn::v1::JobState s);

/// A positive integer id given on the command line (a run or twin id). Throws UsageError naming
/// `what`, the kind of id and where to find one: "runs show: 'x' is not a run id (a positive
/// integer; see pnnctl runs)".
std::uint64_t parse_id(const std::string& text, const std::string& what, const std::string& kind,
                       const std::string& listing);

/// A wall-clock time in ns as local "YYYY-MM-DD HH:MM:SS" ("-" for 0).
std::string format_time_ns(std::int64_t ns);

/// The multi-line description of a device's spec (units, hard limits), as the in-process
/// `pnnctl describe ADDRESS` prints it.
std::string describe_spec(const pnn::v1::DeviceSpec& spec);

/// The final result table of a training job from its JSON summary (the keys of
/// pnn/training/job_summary.hpp). The same for in-process and remote runs.
void print_summary(const nlohmann::json& summary);

}  // namespace pnnctl
