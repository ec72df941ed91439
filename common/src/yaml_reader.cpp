#include "pnn/common/yaml_reader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <type_traits>

namespace pnn::common {

void YamlReaderBase::fail(const YAML::Node& node, const std::string& key,
                          const std::string& message) const {
  std::ostringstream out;
  out << source_;
  if (node.IsDefined() && node.Mark().line >= 0) out << ":" << node.Mark().line + 1;
  out << ": " << (key.empty() ? "" : "'" + key + "': ") << message;
  raise_(out.str());
  std::abort();  // unreachable: raise_ throws
}

void YamlReaderBase::only_keys(const YAML::Node& map, const std::string& where,
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

template <class T>
T YamlReaderBase::get(const YAML::Node& map, const std::string& where, const std::string& key,
                      T fallback, const char* type_name) const {
  const YAML::Node node = map[key];
  if (!node.IsDefined() || node.IsNull()) return fallback;
  return scalar_as<T>(node, join(where, key), type_name);
}

template <class T>
T YamlReaderBase::scalar_as(const YAML::Node& node, const std::string& key,
                            const char* type_name) const {
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

// The types the header promises.
#define PNN_YAML_READER_TYPE(T)                                                                  \
  template T YamlReaderBase::get<T>(const YAML::Node&, const std::string&, const std::string&, \
                                    T, const char*) const;                                       \
  template T YamlReaderBase::scalar_as<T>(const YAML::Node&, const std::string&, const char*)    \
      const;
PNN_YAML_READER_TYPE(bool)
PNN_YAML_READER_TYPE(int)
PNN_YAML_READER_TYPE(long)
PNN_YAML_READER_TYPE(long long)
PNN_YAML_READER_TYPE(unsigned)
PNN_YAML_READER_TYPE(unsigned long)
PNN_YAML_READER_TYPE(unsigned long long)
PNN_YAML_READER_TYPE(float)
PNN_YAML_READER_TYPE(double)
PNN_YAML_READER_TYPE(std::string)
#undef PNN_YAML_READER_TYPE

std::string YamlReaderBase::key_text(const YAML::Node& key, const std::string& where) const {
  if (!key.IsScalar()) {
    fail(key, where, "expected a key name, got " + describe(key) + " as a key");
  }
  return key.Scalar();
}

std::string YamlReaderBase::describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::uint64_t YamlReaderBase::get_count(const YAML::Node& map, const std::string& where,
                                        const std::string& key, std::uint64_t fallback,
                                        std::uint64_t lo, std::uint64_t hi) const {
  const YAML::Node node = map[key];
  const auto v =
      get<long long>(map, where, key, static_cast<long long>(fallback), "a whole number");
  if (v < 0 || static_cast<std::uint64_t>(v) < lo || static_cast<std::uint64_t>(v) > hi) {
    fail(node, join(where, key), "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<std::uint64_t>(v);
}

std::string YamlReaderBase::join(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "." + b;
}

std::string YamlReaderBase::hint(const std::string& key, const std::vector<std::string>& allowed) {
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

void with_yaml_errors(const std::string& source, const std::function<void()>& parse,
                      const std::function<void(const std::string&)>& fail) {
  try {
    parse();
  } catch (const YAML::Exception& e) {
    const std::string line = e.mark.is_null() ? "" : ":" + std::to_string(e.mark.line + 1);
    fail(source + line + ": " + e.msg);
  }
}

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace pnn::common
