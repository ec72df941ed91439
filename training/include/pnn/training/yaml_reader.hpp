#pragma once
/// Reading a YAML config with errors a user can act on: every error names the file, the line, the
/// dotted key and the fix; an unknown key lists the allowed ones and suggests the closest
/// ("did you mean"). Shared by the job config (training) and pnnd's config (daemon). Header-only;
/// an includer links yaml-cpp itself. `Error` is the exception type thrown, constructed from the
/// message. The accessors never let a yaml-cpp exception escape: a value of the wrong type (a
/// list or mapping where a scalar is expected, text where a number is) is an `Error` naming the
/// key and the expected type, and so is a non-finite floating-point value (.inf, -.inf, .nan).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace pnn::training {

template <class Error>
class YamlReader {
 public:
  /// `source`: the file name that starts every message.
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key,
                         const std::string& message) const {
    std::ostringstream out;
    out << source_;
    if (node.IsDefined() && node.Mark().line >= 0) out << ":" << node.Mark().line + 1;
    out << ": " << (key.empty() ? "" : "'" + key + "': ") << message;
    throw Error(out.str());
  }

  /// `map` must be a mapping whose keys are all in `allowed`.
  void only_keys(const YAML::Node& map, const std::string& where,
                 const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) {
      fail(map, where, "expected a mapping of keys to values, got " + describe(map));
    }
    for (const auto& kv : map) {
      const auto key = key_text(kv.first, where);
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first, join(where, key),
             "unknown key" + hint(key, allowed) + " (allowed here: " + list + ")");
      }
    }
  }

  /// map[key] as T, or `fallback` when absent or null; `type_name` says what was expected.
  /// A floating-point T must be finite.
  template <class T>
  T get(const YAML::Node& map, const std::string& where, const std::string& key, T fallback,
        const char* type_name) const {
    const YAML::Node node = map[key];
    if (!node.IsDefined() || node.IsNull()) return fallback;
    return scalar_as<T>(node, join(where, key), type_name);
  }

  /// `node` (the value of the dotted `key`) as T; it must be a scalar that converts. A
  /// floating-point T must be finite.
  template <class T>
  T scalar_as(const YAML::Node& node, const std::string& key, const char* type_name) const {
    if (!node.IsScalar()) {
      fail(node, key, std::string("expected ") + type_name + ", got " + describe(node));
    }
    T value{};
    try {
      value = node.as<T>();
    } catch (const YAML::Exception&) {
      fail(node, key, std::string("expected ") + type_name + ", got '" + node.Scalar() + "'");
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(value)) {
        fail(node, key,
             std::string("expected ") + type_name + " (finite), got '" + node.Scalar() + "'");
      }
    }
    return value;
  }

  /// A mapping key as text; a list or mapping used as a key is an error under `where`.
  std::string key_text(const YAML::Node& key, const std::string& where) const {
    if (!key.IsScalar()) {
      fail(key, where, "expected a key name, got " + describe(key) + " as a key");
    }
    return key.Scalar();
  }

  /// What a node is, for "expected X, got Y": 'text' for a scalar, else its kind.
  static std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Null: return "nothing (null)";
      case YAML::NodeType::Undefined: break;
    }
    return "nothing";
  }

  /// A whole number in [lo, hi].
  std::uint64_t get_count(const YAML::Node& map, const std::string& where, const std::string& key,
                          std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi) const {
    const YAML::Node node = map[key];
    const auto v =
        get<long long>(map, where, key, static_cast<long long>(fallback), "a whole number");
    if (v < 0 || static_cast<std::uint64_t>(v) < lo || static_cast<std::uint64_t>(v) > hi) {
      fail(node, join(where, key), "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return static_cast<std::uint64_t>(v);
  }

  /// "a.b": the dotted path of key b under a.
  static std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "." + b;
  }

  /// " (did you mean 'x'?)" for the allowed key within edit distance 2 of `key`, else "".
  static std::string hint(const std::string& key, const std::vector<std::string>& allowed) {
    std::string best;
    std::size_t best_d = 3;
    for (const auto& a : allowed) {
      std::vector<std::size_t> prev(a.size() + 1), cur(a.size() + 1);
      for (std::size_t j = 0; j <= a.size(); ++j) prev[j] = j;
      for (std::size_t i = 1; i <= key.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= a.size(); ++j) {
          cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (key[i - 1] != a[j - 1])});
        }
        std::swap(prev, cur);
      }
      if (prev[a.size()] < best_d) {
        best_d = prev[a.size()];
        best = a;
      }
    }
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

 private:
  std::string source_;
};

}  // namespace pnn::training
