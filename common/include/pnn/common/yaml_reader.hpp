#pragma once
/// Reading a YAML config with errors a user can act on: every error names the file, the line, the
/// dotted key and the fix; an unknown key lists the allowed ones and suggests the closest
/// ("did you mean"). Shared by the job config (training) and pnnd's config (daemon).
///
/// `Error` is the exception type thrown, constructed from the message. The accessors never let a
/// yaml-cpp exception escape: a value of the wrong type (a list or mapping where a scalar is
/// expected, text where a number is) is an `Error` naming the key and the expected type, and so
/// is a non-finite floating-point value (.inf, -.inf, .nan).
///
/// yaml-cpp stays out of this header: pnn::common links it PRIVATE and only declares
/// `YAML::Node` here. A caller that loads or walks nodes includes <yaml-cpp/yaml.h> and links
/// yaml-cpp itself. `get<T>` / `scalar_as<T>` exist for T = bool, int, long, long long,
/// unsigned, unsigned long, unsigned long long, float, double and std::string.
/// Thread rule: a reader is immutable; use it from any thread.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace YAML {
class Node;
}  // namespace YAML

namespace pnn::common {

/// The reader without its exception type (compiled once in pnn::common); use `YamlReader`.
class YamlReaderBase {
 public:
  /// Throws "<source>:<line>: '<key>': <message>" (the line when the node has one).
  [[noreturn]] void fail(const YAML::Node& node, const std::string& key,
                         const std::string& message) const;

  /// `map` must be a mapping whose keys are all in `allowed`.
  void only_keys(const YAML::Node& map, const std::string& where,
                 const std::vector<std::string>& allowed) const;

  /// map[key] as T, or `fallback` when absent or null; `type_name` says what was expected.
  /// A floating-point T must be finite.
  template <class T>
  T get(const YAML::Node& map, const std::string& where, const std::string& key, T fallback,
        const char* type_name) const;

  /// `node` (the value of the dotted `key`) as T; it must be a scalar that converts. A
  /// floating-point T must be finite.
  template <class T>
  T scalar_as(const YAML::Node& node, const std::string& key, const char* type_name) const;

  /// A mapping key as text; a list or mapping used as a key is an error under `where`.
  std::string key_text(const YAML::Node& key, const std::string& where) const;

  /// What a node is, for "expected X, got Y": 'text' for a scalar, else its kind.
  static std::string describe(const YAML::Node& node);

  /// A whole number in [lo, hi].
  std::uint64_t get_count(const YAML::Node& map, const std::string& where, const std::string& key,
                          std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi) const;

  /// "a.b": the dotted path of key b under a.
  static std::string join(const std::string& a, const std::string& b);

  /// " (did you mean 'x'?)" for the allowed key within edit distance 2 of `key`, else "".
  static std::string hint(const std::string& key, const std::vector<std::string>& allowed);

 protected:
  /// `raise` throws the caller's exception type with the message; it never returns.
  using Raise = void (*)(const std::string& message);
  YamlReaderBase(std::string source, Raise raise) : source_(std::move(source)), raise_(raise) {}

 private:
  std::string source_;
  Raise raise_;
};

/// The reader for one file; every error is thrown as `Error(message)`.
template <class Error>
class YamlReader : public YamlReaderBase {
 public:
  /// `source`: the file name that starts every message.
  explicit YamlReader(std::string source) : YamlReaderBase(std::move(source), &raise) {}

 private:
  [[noreturn]] static void raise(const std::string& message) { throw Error(message); }
};

/// Runs `parse`, the net under the reader's checks: a yaml-cpp exception escaping it (syntax, a
/// conversion the reader did not name) becomes `fail("SOURCE:LINE: what")`, which must throw the
/// caller's config error, never an internal error of whoever parses.
void with_yaml_errors(const std::string& source, const std::function<void()>& parse,
                      const std::function<void(const std::string&)>& fail);

/// The whole file, or nullopt if it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

/// `parse(text, source)` under with_yaml_errors, its errors thrown as `Error`.
template <class Error, class Parse>
auto parse_yaml_config(const std::string& text, const std::string& source, Parse parse) {
  decltype(parse(text, source)) out;
  with_yaml_errors(source, [&] { out = parse(text, source); },
                   [](const std::string& m) { throw Error(m); });
  return out;
}

/// The file at `path` through parse_yaml_config; a file that cannot be opened is
/// `Error("PATH: cannot open " + what)`.
template <class Error, class Parse>
auto load_yaml_config(const std::string& path, const std::string& what, Parse parse) {
  const auto text = read_text_file(path);
  if (!text) throw Error(path + ": cannot open " + what);
  return parse_yaml_config<Error>(*text, path, parse);
}

}  // namespace pnn::common
