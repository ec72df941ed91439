// pnn::common::YamlReader: messages with file, line, dotted key and fix; no yaml-cpp exception
// escapes. (The job config and pnnd config tests cover it through their parsers as well.)
#include "pnn/common/yaml_reader.hpp"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <stdexcept>
#include <string>

namespace {

struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Reader = pnn::common::YamlReader<TestError>;

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const TestError& e) {
    return e.what();
  }
  FAIL("expected a TestError");
  return "";
}

}  // namespace

TEST_CASE("common: YamlReader reads values with fallbacks and names file, line and key") {
  const Reader r("lab.yaml");
  const YAML::Node root = YAML::Load("store:\n  path: /var/lib/pnn\n  max_mb: 12\n  ratio: 0.5\n"
                                     "  wal: true\n  bad: .inf\n  list: [1, 2]\n");
  const YAML::Node store = root["store"];
  CHECK(r.get<std::string>(store, "store", "path", "", "a path") == "/var/lib/pnn");
  CHECK(r.get<unsigned>(store, "store", "max_mb", 0u, "a whole number") == 12u);
  CHECK(r.get<double>(store, "store", "ratio", 1.0, "a number") == 0.5);
  CHECK(r.get<bool>(store, "store", "wal", false, "true or false"));
  CHECK(r.get<int>(store, "store", "absent", 7, "a whole number") == 7);
  CHECK(r.get_count(store, "store", "max_mb", 0, 1, 100) == 12);

  CHECK(message_of([&] { (void)r.get<double>(store, "store", "bad", 0.0, "a number"); }) ==
        "lab.yaml:6: 'store.bad': expected a number (finite), got '.inf'");
  CHECK(message_of([&] { (void)r.get<int>(store, "store", "path", 0, "a whole number"); }) ==
        "lab.yaml:2: 'store.path': expected a whole number, got '/var/lib/pnn'");
  CHECK(message_of([&] { (void)r.get<int>(store, "store", "list", 0, "a whole number"); }) ==
        "lab.yaml:7: 'store.list': expected a whole number, got a list");
  CHECK(message_of([&] { (void)r.get_count(store, "store", "max_mb", 0, 20, 30); }) ==
        "lab.yaml:3: 'store.max_mb': must be in 20..30");
}

TEST_CASE("common: YamlReader refuses unknown keys with the allowed ones and a suggestion") {
  const Reader r("job.yaml");
  const YAML::Node root = YAML::Load("trainng:\n  epochs: 3\n");
  const std::string msg = message_of([&] { r.only_keys(root, "", {"training", "devices"}); });
  CHECK(msg ==
        "job.yaml:1: 'trainng': unknown key (did you mean 'training'?) (allowed here: training, "
        "devices)");
  CHECK(message_of([&] { r.only_keys(YAML::Load("[1]"), "x", {"a"}); }) ==
        "job.yaml:1: 'x': expected a mapping of keys to values, got a list");
  CHECK(Reader::hint("zzz", {"training"}).empty());
  CHECK(Reader::join("a", "b") == "a.b");
  CHECK(Reader::join("", "b") == "b");
}
