// The lab registry's parser and resolver (clients/cpp/src/lab.cpp): every error names the file,
// the line and the fix.
#include "pnn/client/lab.hpp"

#include <doctest/doctest.h>

#include <string>

using pnn::client::Lab;
using pnn::client::LabError;

namespace {

// A valid Z85 public key (pnnd --keygen output).
constexpr const char* kKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

std::string error_of(const std::string& text) {
  try {
    Lab::parse(text, "lab.yaml");
  } catch (const LabError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("lab registry: daemons with endpoints and keys, and DAEMON/DEVICE names resolve") {
  const Lab lab = Lab::parse(std::string("daemons:\n"
                                         "  - name: optics\n"
                                         "    rpc: tcp://optics-pc:7700\n"
                                         "    telemetry: tcp://optics-pc:7701\n"
                                         "    server_key: \"") + kKey + "\"\n"
                                         "  - name: bench.2\n"
                                         "    rpc: ipc:///run/pnnd.sock\n"
                                         "    description: electronics bench\n",
                             "lab.yaml");
  REQUIRE(lab.daemons().size() == 2);
  CHECK(lab.daemons()[0].line == 2);
  CHECK(lab.daemons()[1].line == 6);
  CHECK(lab.daemon("optics").server_key == kKey);
  CHECK(lab.daemon("bench.2").telemetry.empty());
  const auto t = lab.resolve("optics/shg-a");
  CHECK(t.daemon->rpc == "tcp://optics-pc:7700");
  CHECK(t.device == "shg-a");
  CHECK(pnn::client::is_lab_name("optics/shg-a"));
  CHECK_FALSE(pnn::client::is_lab_name("shg-a"));
}

TEST_CASE("lab registry: unknown daemons and malformed names are errors naming the file") {
  const Lab lab = Lab::parse("daemons:\n  - {name: a, rpc: 'tcp://h:1'}\n  - {name: b, rpc: 'tcp://h:2'}\n",
                             "lab.yaml");
  for (const char* bad : {"c/dev", "a/", "/dev", "a/b/c", "plain"}) {
    CAPTURE(bad);
    try {
      lab.resolve(bad);
      FAIL("resolved");
    } catch (const LabError& e) {
      const std::string m = e.what();
      CHECK(m.find("lab.yaml") != std::string::npos);
      if (std::string(bad) == "c/dev") CHECK(m.find("it lists: a, b") != std::string::npos);
    }
  }
}

TEST_CASE("lab registry: each malformed entry is an error with its line and the fix") {
  struct Case {
    std::string text, expect;
  };
  const Case cases[] = {
      {"daemons: []\n", "non-empty list"},
      {"daemon:\n  - {name: a, rpc: 'tcp://h:1'}\n", "did you mean 'daemons'"},
      {"daemons:\n  - {name: a, rpc: 'tcp://h:1'}\n  - {name: a, rpc: 'tcp://h:2'}\n",
       "lab.yaml:3: 'daemons[1].name': daemon 'a' is listed twice (first at line 2)"},
      {"daemons:\n  - {rpc: 'tcp://h:1'}\n", "every daemon needs a name"},
      {"daemons:\n  - {name: 'x/y', rpc: 'tcp://h:1'}\n", "not a daemon name"},
      {"daemons:\n  - {name: a}\n", "needs rpc"},
      {"daemons:\n  - {name: a, rpc: 'http://h:1'}\n", "not an RPC endpoint"},
      {"daemons:\n  - {name: a, rpc: 'tcp://h:99999'}\n", "not an RPC endpoint"},
      {"daemons:\n  - {name: a, rpc: 'tcp://h:1', server_key: short}\n", "Z85"},
      {"daemons:\n  - {name: a, rpc: 'tcp://h:1', serverkey: x}\n", "did you mean 'server_key'"},
      {"daemons:\n  - name: a\n    rpc: [1, 2]\n", "daemons[0].rpc"},
      {"daemons:\n  - {name: a, rpc: 'tcp://h:1'\n", "lab.yaml"},  // YAML syntax
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const std::string m = error_of(c.text);
    CHECK(m.find(c.expect) != std::string::npos);
    CHECK(m.find("lab.yaml") != std::string::npos);
  }
  try {
    Lab::load("/nonexistent/lab.yaml");
    FAIL("loaded");
  } catch (const LabError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/lab.yaml: cannot open the lab registry") == 0);
  }
}
