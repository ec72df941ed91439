// The dashboard's HTTP side against a real pnnd in-process: pages and JSON, the event stream and
// its resume, the token, and hostile HTTP clients (malformed requests, huge heads, traversal,
// writes, idle and slow connections) while RPCs go on being served.
#include <doctest/doctest.h>

#include <utility>  // before Asio (Boost 1.74 + C++20 on GCC 12)
#include <boost/asio.hpp>

#include <nlohmann/json.hpp>

#include "../../daemon/src/dashboard.hpp"
#include "daemon/daemon_test_util.hpp"

namespace pnn::daemon::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using nlohmann::json;

struct HttpReply {
  int status = 0;
  std::string head, body;
};

std::pair<std::string, unsigned short> host_port(const std::string& url) {
  const std::string rest = url.substr(7);  // http://
  const auto colon = rest.rfind(':');
  return {rest.substr(0, colon), static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)))};
}

tcp::socket connect_to(asio::io_context& io, const std::string& url) {
  const auto [host, port] = host_port(url);
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address(host), port));
  return s;
}

// Sends `raw` bytes and reads until the server closes (every request here says Connection: close)
// or `max_bytes` arrived.
HttpReply http_exchange(const std::string& url, const std::string& raw, std::size_t max_bytes = 64u << 20) {
  asio::io_context io;
  tcp::socket s = connect_to(io, url);
  asio::write(s, asio::buffer(raw));
  std::string all;
  std::array<char, 65536> buf{};
  boost::system::error_code ec;
  while (all.size() < max_bytes) {
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    all.append(buf.data(), n);
  }
  HttpReply r;
  const auto end = all.find("\r\n\r\n");
  r.head = all.substr(0, end);
  r.body = end == std::string::npos ? "" : all.substr(end + 4);
  if (all.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(all.substr(9, 3));
  return r;
}

HttpReply get(const std::string& url, const std::string& target, const std::string& extra_headers = "") {
  return http_exchange(url, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                           extra_headers + "\r\n");
}

DaemonConfig dashboard_config(const TempDir& dir) {
  DaemonConfig c = test_config(dir);
  c.http.bind = "127.0.0.1:0";
  c.devices.push_back(device("power", "sim://power-law?prefactor=2"));
  c.devices.push_back(device("osc", "sim://mechanical-oscillators?seed=1&n=8"));
  return c;
}

// Reads an SSE stream until `until` holds for what arrived, or the deadline passes.
std::string read_stream_until(tcp::socket& s, const std::function<bool(const std::string&)>& until,
                              std::chrono::milliseconds limit = 8000ms) {
  std::string all;
  std::array<char, 8192> buf{};
  const auto end = std::chrono::steady_clock::now() + limit;
  s.non_blocking(true);
  while (std::chrono::steady_clock::now() < end && !until(all)) {
    boost::system::error_code ec;
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    if (ec) break;
    all.append(buf.data(), n);
  }
  return all;
}

}  // namespace

TEST_CASE("dashboard: config keys, and a non-loopback bind needs a token") {
  auto parse = [](const std::string& yaml) { return parse_daemon_config(yaml, "lab.yaml"); };
  const auto c = parse("http:\n  bind: 127.0.0.1:8080\n");
  CHECK(c.http.enabled());
  CHECK(c.http.bind == "127.0.0.1:8080");
  CHECK_FALSE(parse("version: 1\n").http.enabled());
  auto error_of = [&](const std::string& yaml) {
    try {
      parse(yaml);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const auto open = error_of("http:\n  bind: 0.0.0.0:8080\n");
  CHECK(open.find("http.token") != std::string::npos);
  CHECK(open.find("lab.yaml:2") != std::string::npos);
  CHECK(parse("http:\n  bind: 0.0.0.0:8080\n  token: abcdefghijklmnopqrstuvwx\n").http.token ==
        "abcdefghijklmnopqrstuvwx");
  CHECK(error_of("http:\n  bind: 127.0.0.1:8080\n  token: short\n").find("at least 16") != std::string::npos);
  CHECK(error_of("http:\n  bind: 8080\n").find("HOST:PORT") != std::string::npos);
  CHECK(error_of("http:\n  bind: 127.0.0.1:99999\n").find("HOST:PORT") != std::string::npos);
  CHECK(error_of("http:\n  bnd: 127.0.0.1:1\n").find("bnd") != std::string::npos);
  CHECK(error_of("http:\n  bind: 127.0.0.1:1\n  token_file: /nonexistent/token\n").find("cannot read") !=
        std::string::npos);
}

TEST_CASE("dashboard: URL paths are decoded strictly (no traversal, no malformed escapes)") {
  std::string out;
  CHECK(detail::decode_url_path("/static/app.js", out));
  CHECK(out == "/static/app.js");
  CHECK(detail::decode_url_path("/api/runs/%31", out));
  CHECK(out == "/api/runs/1");
  for (const char* bad : {"/../etc/passwd", "/static/../../x", "/%2e%2e/x", "/static/%2E%2E/x", "/a/./b",
                          "/x%00", "/x%zz", "/x%4", "relative", "/a\\b", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(detail::decode_url_path(bad, out));
  }
  const auto q = detail::parse_query("since=abc%2F12&limit=5&flag&x=a+b");
  CHECK(q.at("since") == "abc/12");
  CHECK(q.at("limit") == "5");
  CHECK(q.at("x") == "a b");
}

TEST_CASE("dashboard: pages, snapshot JSON and runs are served read-only") {
  TempDir dir("dash-pages");
  RunningServer server(dashboard_config(dir));
  const std::string url = server.server().http_url();
  REQUIRE(url.rfind("http://127.0.0.1:", 0) == 0);

  const auto index = get(url, "/");
  CHECK(index.status == 200);
  CHECK(index.head.find("text/html") != std::string::npos);
  CHECK(index.head.find("Content-Security-Policy") != std::string::npos);
  CHECK(index.body.find("/static/app.js") != std::string::npos);
  CHECK(get(url, "/static/app.js").status == 200);
  CHECK(get(url, "/static/nope.js").status == 404);

  const auto snap = get(url, "/api/snapshot");
  REQUIRE(snap.status == 200);
  const json s = json::parse(snap.body);
  CHECK(s["instance_id"] == server.server().instance_id());
  REQUIRE(s["devices"].size() == 2);
  std::set<std::string> names;
  for (const auto& d : s["devices"]) {
    names.insert(d["name"]);
    CHECK(d["state"] == "ACTIVE");
    CHECK(d["spec"]["serial"].get<std::string>().size() > 0);
  }
  CHECK(names == std::set<std::string>{"osc", "power"});

  const auto runs = get(url, "/api/runs");
  REQUIRE(runs.status == 200);
  CHECK(json::parse(runs.body)["runs"].is_array());
  CHECK(get(url, "/api/runs/99").status == 404);
  CHECK(get(url, "/api/runs/abc").status == 404);
  CHECK(get(url, "/api/runs/1/../../etc/passwd").status == 400);
  CHECK(get(url, "/api/runs?limit=x").status == 400);

  // Writes of any kind are refused, and HEAD gets the head only.
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    CAPTURE(method);
    const auto r = http_exchange(url, std::string(method) + " /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\nContent-Length: 0\r\n\r\n");
    CHECK(r.status == 405);
    CHECK(r.head.find("Allow: GET, HEAD") != std::string::npos);
  }
  const auto head = http_exchange(url, "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  // A page addressed to another host name (DNS rebinding) is refused on a tokenless dashboard.
  const auto rebinding = http_exchange(url, "GET /api/snapshot HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n");
  CHECK(rebinding.status == 403);
}

TEST_CASE("dashboard: a token is required when configured, then kept as a cookie") {
  TempDir dir("dash-token");
  DaemonConfig c = dashboard_config(dir);
  c.http.token = "0123456789abcdef-token";
  RunningServer server(std::move(c));
  const std::string url = server.server().http_url();
  const auto denied = get(url, "/api/snapshot");
  CHECK(denied.status == 401);
  CHECK(denied.body.find("?token=") != std::string::npos);
  CHECK(get(url, "/api/snapshot", "Authorization: Bearer wrong-token-wrong-token\r\n").status == 401);
  CHECK(get(url, "/api/snapshot", "Authorization: Bearer 0123456789abcdef-token\r\n").status == 200);
  const auto first = get(url, "/?token=0123456789abcdef-token");
  CHECK(first.status == 303);
  CHECK(first.head.find("Set-Cookie: pnn_token=0123456789abcdef-token; Path=/; HttpOnly; SameSite=Strict") !=
        std::string::npos);
  CHECK(get(url, "/api/snapshot", "Cookie: a=b; pnn_token=0123456789abcdef-token\r\n").status == 200);
  CHECK(get(url, "/api/events?token=nope-nope-nope-nope").status == 401);
}

TEST_CASE("dashboard: the event stream carries telemetry and resumes from a sequence number") {
  TempDir dir("dash-events");
  RunningServer server(dashboard_config(dir));  // heartbeats every 100 ms
  const std::string url = server.server().http_url();
  asio::io_context io;
  tcp::socket s = connect_to(io, url);
  asio::write(s, asio::buffer(std::string("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
  const std::string first = read_stream_until(s, [](const std::string& all) {
    return std::count(all.begin(), all.end(), '\n') > 0 && all.find("event: hb") != std::string::npos &&
           all.rfind("event: hb") != all.find("event: hb");
  });
  REQUIRE(first.find("text/event-stream") != std::string::npos);
  CHECK(first.find("event: hello") != std::string::npos);
  // The id of the first heartbeat: INSTANCE/SEQ.
  const auto id_at = first.find("id: ");
  REQUIRE(id_at != std::string::npos);
  const std::string id = first.substr(id_at + 4, first.find('\n', id_at) - id_at - 4);
  CHECK(id.rfind(server.server().instance_id() + "/", 0) == 0);
  const std::uint64_t seq = std::stoull(id.substr(id.find('/') + 1));
  s.close();

  // A device change reaches a new stream resumed from that id, along with what it missed.
  auto rpc = make_client(server.rpc());
  const std::string token = acquire_token(*rpc, "power");
  REQUIRE(rpc->call(lifecycle("power", v1::LifecycleRequest::DEACTIVATE, token)).status().code() == v1::OK);
  tcp::socket again = connect_to(io, url);
  asio::write(again, asio::buffer("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: " + id + "\r\n\r\n"));
  const std::string resumed = read_stream_until(again, [](const std::string& all) {
    return all.find("\"state\":\"INACTIVE\"") != std::string::npos;
  });
  CHECK(resumed.find("event: reset") == std::string::npos);
  CHECK(resumed.find("event: device") != std::string::npos);
  CHECK(resumed.find("\"state\":\"INACTIVE\"") != std::string::npos);
  // The replay starts right after the id it resumed from.
  CHECK(resumed.find("id: " + server.server().instance_id() + "/" + std::to_string(seq + 1) + "\n") !=
        std::string::npos);
  CHECK(resumed.find("id: " + id + "\n") == std::string::npos);
  again.close();

  // An id from another daemon instance cannot be resumed: the page is told to start over.
  tcp::socket other = connect_to(io, url);
  asio::write(other, asio::buffer(std::string("GET /api/events?since=not-this-instance/5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
  const std::string reset = read_stream_until(other, [](const std::string& all) {
    return all.find("event: reset") != std::string::npos;
  });
  CHECK(reset.find("event: reset") != std::string::npos);
}

TEST_CASE("dashboard: hostile HTTP clients do not stop pnnd serving RPCs") {
  TempDir dir("dash-hostile");
  DaemonConfig c = dashboard_config(dir);
  c.http.max_connections = 20;
  c.http.idle_timeout_ms = 600;
  c.http.write_timeout_ms = 600;
  RunningServer server(std::move(c));
  const std::string url = server.server().http_url();
  auto rpc = make_client(server.rpc());
  auto rpc_ok = [&] { return rpc->call(describe("power")).status().code() == v1::OK; };

  // Malformed request lines and heads get 400, a huge head 431, a body 413.
  CHECK(http_exchange(url, "NOT HTTP AT ALL\r\n\r\n").status == 400);
  CHECK(http_exchange(url, "GET / HTTP/1.9\r\nHost: 127.0.0.1\r\n\r\n").status == 400);  // Beast: 1.0 and 1.1 only
  CHECK(http_exchange(url, "GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n").status == 400);
  CHECK(http_exchange(url, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n").status == 431);
  CHECK(http_exchange(url, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n0123456789").status == 413);
  CHECK(http_exchange(url, std::string("GET /\0x HTTP/1.1\r\n\r\n", 20)).status == 400);
  // Traversal in every spelling.
  for (const char* target : {"/../etc/passwd", "/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                             "/static/..%2f..%2fetc%2fpasswd", "//etc/passwd"}) {
    CAPTURE(target);
    const auto r = get(url, target);
    CHECK((r.status == 400 || r.status == 404));
    CHECK(r.body.find("root:") == std::string::npos);
  }
  CHECK(rpc_ok());

  // Idle connections past the limit are refused with 503, RPCs go on, and idle ones time out.
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(connect_to(io, url));
  std::this_thread::sleep_for(100ms);
  const auto refused = get(url, "/healthz");
  CHECK(refused.status == 503);
  CHECK(rpc_ok());
  // A client that never finishes its head is dropped after http.idle_timeout_ms.
  CHECK(eventually([&] { return get(url, "/healthz").status == 200; }, 5000ms));
  idle.clear();

  // A slow reader of the stream: it stays bounded and is dropped; the next client is served.
  tcp::socket slow = connect_to(io, url);
  slow.set_option(asio::socket_base::receive_buffer_size(4096));
  asio::write(slow, asio::buffer(std::string("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
  auto token = acquire_token(*rpc, "osc");
  for (int i = 0; i < 30; ++i) {  // device events while the stream is not read
    const auto t = i % 2 ? v1::LifecycleRequest::ACTIVATE : v1::LifecycleRequest::DEACTIVATE;
    CHECK(rpc->call(lifecycle("osc", t, token)).status().code() == v1::OK);
  }
  CHECK(rpc_ok());
  CHECK(get(url, "/api/snapshot").status == 200);
}

}  // namespace pnn::daemon::test
