// HttpRequestParser, BuildEnviron and Classifier: the LB's request-side logic without I/O.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/http_request_parser.h"
#include "common/net_address.h"
#include "zklb/classifier.h"
#include "zklb/environ.h"
#include "zklb/zk_discovery.h"

using rlb::lb::Classifier;
using rlb::HttpLimits;
using rlb::HttpRequestParser;
using rlb::ParsedRequest;

namespace {

struct Collector : HttpRequestParser::Handler {
  std::vector<ParsedRequest> requests;
  std::vector<std::string> bodies;
  int completed = 0;
  void OnRequestHeaders(ParsedRequest& r) override {
    requests.push_back(r);
    bodies.emplace_back();
  }
  void OnRequestBody(std::string_view d) override { bodies.back().append(d); }
  void OnRequestComplete() override { ++completed; }
};

// Parses everything, resuming after each request; returns the final state.
HttpRequestParser::State ParseAll(HttpRequestParser& p, std::string_view data) {
  auto st = p.Execute(data);
  while (st == HttpRequestParser::State::kPaused) {
    if (!p.has_kept_bytes()) {
      st = p.Resume();
      break;
    }
    st = p.Resume();
  }
  return st;
}

std::string Env(const rlb::proto::Pairs& env, const std::string& key) {
  for (const auto& [k, v] : env) {
    if (k == key) return v;
  }
  return "<missing>";
}

}  // namespace

TEST_CASE("pipelined requests are delivered one at a time, in order", "[http]") {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  auto st = p.Execute("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n");
  CHECK(st == HttpRequestParser::State::kPaused);
  REQUIRE(c.requests.size() == 1);
  CHECK(c.requests[0].url == "/a");
  st = p.Resume();
  REQUIRE(c.requests.size() == 2);
  CHECK(c.requests[1].url == "/b");
  CHECK(c.completed == 2);
}

TEST_CASE("chunked bodies are de-chunked", "[http]") {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  ParseAll(p, "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  REQUIRE(c.requests.size() == 1);
  CHECK(c.requests[0].chunked);
  CHECK(c.bodies[0] == "hello world");
}

TEST_CASE("request smuggling shapes are refused with 400", "[http]") {
  for (const char* req : {
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
           "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
           "GET / HTTP/1.1\nHost: x\n\n",
           "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",  // HTTP/1.1 without Host
       }) {
    Collector c;
    HttpRequestParser p(&c, HttpLimits{});
    INFO(req);
    CHECK(ParseAll(p, req) == HttpRequestParser::State::kError);
    CHECK(p.error_status() == 400);
  }
}

TEST_CASE("limits map to 431, 413 and 505", "[http]") {
  HttpLimits small;
  small.max_header_bytes = 100;
  small.max_headers = 3;
  small.max_body_bytes = 10;
  {
    Collector c;
    HttpRequestParser p(&c, small);
    CHECK(ParseAll(p, "GET / HTTP/1.1\r\nA: " + std::string(200, 'x') + "\r\n\r\n") ==
          HttpRequestParser::State::kError);
    CHECK(p.error_status() == 431);
  }
  {
    Collector c;
    HttpRequestParser p(&c, small);
    CHECK(ParseAll(p, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n") ==
          HttpRequestParser::State::kError);
    CHECK(p.error_status() == 431);
  }
  {
    Collector c;
    HttpRequestParser p(&c, small);
    CHECK(ParseAll(p, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n") ==
          HttpRequestParser::State::kError);
    CHECK(p.error_status() == 413);
  }
  {
    Collector c;
    HttpRequestParser p(&c, small);
    CHECK(ParseAll(p, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n") ==
          HttpRequestParser::State::kError);
    CHECK(p.error_status() == 413);
  }
  {
    Collector c;
    HttpRequestParser p(&c, HttpLimits{});
    CHECK(ParseAll(p, "GET / HTTP/2.0\r\nHost: x\r\n\r\n") == HttpRequestParser::State::kError);
    CHECK(p.error_status() == 505);
  }
}

TEST_CASE("the environ follows PEP 3333", "[http]") {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  ParseAll(p, "POST /a%20b/%7e?x=%20y HTTP/1.1\r\nHost: www.example.com\r\n"
              "Content-Type: text/plain\r\nContent-Length: 2\r\nAccept: a\r\nAccept: b\r\n"
              "Cookie: c=1\r\nCookie: d=2\r\nX_Sneaky: 1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nhi");
  REQUIRE(c.requests.size() == 1);
  rlb::lb::ConnectionInfo info{"10.0.0.1", "127.0.0.1", 5555, 8080};
  auto env = rlb::lb::BuildEnviron(c.requests[0], info);
  CHECK(Env(env, "REQUEST_METHOD") == "POST");
  CHECK(Env(env, "SCRIPT_NAME") == "");
  CHECK(Env(env, "PATH_INFO") == "/a b/~");
  CHECK(Env(env, "QUERY_STRING") == "x=%20y");
  CHECK(Env(env, "CONTENT_TYPE") == "text/plain");
  CHECK(Env(env, "CONTENT_LENGTH") == "2");
  CHECK(Env(env, "HTTP_HOST") == "www.example.com");
  CHECK(Env(env, "HTTP_ACCEPT") == "a, b");
  CHECK(Env(env, "HTTP_COOKIE") == "c=1; d=2");
  CHECK(Env(env, "HTTP_X_SNEAKY") == "<missing>");
  CHECK(Env(env, "HTTP_X_FORWARDED_FOR") == "1.2.3.4");
  CHECK(Env(env, "HTTP_CONTENT_TYPE") == "<missing>");
  CHECK(Env(env, "SERVER_NAME") == "127.0.0.1");
  CHECK(Env(env, "SERVER_PORT") == "8080");
  CHECK(Env(env, "SERVER_PROTOCOL") == "HTTP/1.1");
  CHECK(Env(env, "REMOTE_ADDR") == "10.0.0.1");
  CHECK(Env(env, "REMOTE_PORT") == "5555");
  CHECK(Env(env, "wsgi.url_scheme") == "http");
  CHECK(rlb::lb::PercentDecode("%41%zz%4") == "A%zz%4");
}

TEST_CASE("an environ built from a request given up moves its values: the same environ",
          "[http]") {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  ParseAll(p, "GET /x?q HTTP/1.1\r\nHost: a-rather-long-host-name.example\r\n"
              "Accept: a\r\nAccept: b\r\nUser-Agent: a user agent longer than fifteen\r\n"
              "Cookie: c=1\r\nCookie: d=2\r\n\r\n");
  REQUIRE(c.requests.size() == 1);
  rlb::lb::ConnectionInfo info{"10.0.0.1", "127.0.0.1", 5555, 8080};
  auto copied = rlb::lb::BuildEnviron(c.requests[0], info);
  ParsedRequest given = c.requests[0];
  auto moved = rlb::lb::BuildEnviron(std::move(given), info);
  CHECK(moved == copied);
  CHECK(Env(moved, "HTTP_USER_AGENT") == "a user agent longer than fifteen");
  CHECK(Env(moved, "HTTP_ACCEPT") == "a, b");
  CHECK(given.headers.size() == c.requests[0].headers.size());  // names stay, values went
  CHECK(given.headers[0].first == "Host");
  CHECK(given.headers[0].second.empty());
  CHECK(given.method == "GET");
}

TEST_CASE("host classifier strips a leading www.", "[classifier]") {
  auto c = Classifier::Create("zc.resumelb.lb:host_classifier");
  REQUIRE(c.ok());
  CHECK((*c)->Classify({{"HTTP_HOST", "www.example.com"}}) == "example.com");
  // Case, the port and a trailing dot do not make another class (issue 12).
  CHECK((*c)->Classify({{"HTTP_HOST", "Example.com:80"}}) == "example.com");
  CHECK((*c)->Classify({}) == "");
}

TEST_CASE("host classifier normalises case, a trailing dot and the port", "[classifier]") {
  auto c = Classifier::Create("host");
  REQUIRE(c.ok());
  for (const char* host : {"h.example", "WWW.H.EXAMPLE.:8080", "www.h.example", "H.Example.",
                           "h.example:80"}) {
    INFO(host);
    CHECK((*c)->Classify({{"HTTP_HOST", host}}) == "h.example");
  }
  CHECK((*c)->Classify({{"HTTP_HOST", "[::1]:8080"}}) == "[::1]");
  CHECK((*c)->Classify({{"HTTP_HOST", "127.0.0.1:8080"}}) == "127.0.0.1");
  CHECK((*c)->Classify({{"HTTP_HOST", ""}}) == "");
  CHECK(rlb::lb::HostClass("www.") == "www");
}

namespace {

// The environ of one request, which must parse.
rlb::proto::Pairs EnvironOf(const std::string& request) {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  auto st = ParseAll(p, request);
  INFO(request << " -> " << p.error_status() << " " << p.error_reason());
  REQUIRE(st != HttpRequestParser::State::kError);
  REQUIRE(c.requests.size() == 1);
  return rlb::lb::BuildEnviron(c.requests[0], rlb::lb::ConnectionInfo{"1.2.3.4", "5.6.7.8", 1, 2});
}

// The status a request that must fail is refused with.
int ErrorOf(const std::string& request) {
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  auto st = ParseAll(p, request);
  INFO(request);
  CHECK(st == HttpRequestParser::State::kError);
  CHECK(c.requests.empty());
  return p.error_status();
}

}  // namespace

TEST_CASE("absolute-form targets: the target's host wins, any scheme case, query kept",
          "[http]") {
  auto env = EnvironOf("GET http://a.example/x?y=1 HTTP/1.1\r\nHost: b.example\r\n\r\n");
  CHECK(Env(env, "HTTP_HOST") == "a.example");
  CHECK(Env(env, "PATH_INFO") == "/x");
  CHECK(Env(env, "QUERY_STRING") == "y=1");
  env = EnvironOf("GET HTTP://a.example HTTP/1.1\r\nHost: b.example\r\n\r\n");
  CHECK(Env(env, "PATH_INFO") == "/");
  CHECK(Env(env, "HTTP_HOST") == "a.example");
  env = EnvironOf("GET hTTpS://a.example:8443?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n");
  CHECK(Env(env, "PATH_INFO") == "/");
  CHECK(Env(env, "QUERY_STRING") == "q=1");
  CHECK(Env(env, "HTTP_HOST") == "a.example:8443");
  env = EnvironOf("GET http://[::1]:80/p HTTP/1.0\r\n\r\n");  // 1.0: Host optional
  CHECK(Env(env, "HTTP_HOST") == "[::1]:80");
  CHECK(Env(env, "PATH_INFO") == "/p");
  // Origin-form: Host as sent (case, port and dot kept; only the class normalises).
  env = EnvironOf("GET /p?q HTTP/1.1\r\nHost: WWW.H.EXAMPLE.:8080\r\n\r\n");
  CHECK(Env(env, "HTTP_HOST") == "WWW.H.EXAMPLE.:8080");
  CHECK(Env(env, "QUERY_STRING") == "q");
  CHECK(ErrorOf("GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
  CHECK(ErrorOf("GET http://a b/ HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
  CHECK(ErrorOf("GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
}

TEST_CASE("Host must be a reg-name or IP literal with an optional port", "[http]") {
  using rlb::IsValidHost;
  for (const char* ok : {"a.example", "a.example:8080", "A-B_c~d.example.", "127.0.0.1:80",
                         "[::1]", "[::1]:8080", "[v1.x:y]", "xn--bcher-kva.example", "%41.b",
                         "a.example:"}) {
    INFO(ok);
    CHECK(IsValidHost(ok));
  }
  for (const char* bad : {"", ":80", "a/b@c?d", "a b", "a@b", "[::1", "[zz]", "[::1]x",
                          "a.example:8o", "a:1:2", "%4", "a\"b", "[]"}) {
    INFO(bad);
    CHECK_FALSE(IsValidHost(bad));
  }
  CHECK(ErrorOf("GET / HTTP/1.1\r\nHost: \r\n\r\n") == 400);
  CHECK(ErrorOf("GET / HTTP/1.1\r\nHost: a/b@c?d\r\n\r\n") == 400);
  CHECK(ErrorOf("GET / HTTP/1.0\r\nHost: a b\r\n\r\n") == 400);
  CHECK(ErrorOf("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == 400);
}

TEST_CASE("fragments, %00, TRACE and CONNECT are refused; HTTP/1.0 ignores Expect", "[http]") {
  CHECK(ErrorOf("GET /env#frag?x HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(ErrorOf("GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(Env(EnvironOf("GET /a?b=%00 HTTP/1.1\r\nHost: a\r\n\r\n"), "QUERY_STRING") ==
        "b=%00");  // the query is not decoded: the application sees it as sent
  CHECK(ErrorOf("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n") == 405);
  CHECK(ErrorOf("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n") == 405);
  Collector c;
  HttpRequestParser p(&c, HttpLimits{});
  ParseAll(p, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  REQUIRE(c.requests.size() == 1);
  CHECK_FALSE(c.requests[0].expect_continue);
  Collector c2;
  HttpRequestParser p2(&c2, HttpLimits{});
  ParseAll(p2, "POST / HTTP/1.0\r\nExpect: something\r\nContent-Length: 2\r\n\r\nhi");
  CHECK(c2.requests.size() == 1);  // no 417 for HTTP/1.0
}

TEST_CASE("regex classifier: the original's cases", "[classifier]") {
  for (const char* spec : {R"x(zc.resumelb.lb:re_classifier("PATH_INFO",r"^/(?P<class>[^/]*)"))x",
                           R"x(zc.resumelb.lb:re_classifier('PATH_INFO', r'^/(?P<class>[^/]*)'))x",
                           "re:PATH_INFO:^/(?P<class>[^/]*)"}) {
    INFO(spec);
    auto c = Classifier::Create(spec);
    REQUIRE(c.ok());
    CHECK((*c)->Classify({{"PATH_INFO", ""}}) == "");
    CHECK((*c)->Classify({}) == "");
    CHECK((*c)->Classify({{"PATH_INFO", "/"}}) == "");
    CHECK((*c)->Classify({{"PATH_INFO", "/foo"}}) == "foo");
    CHECK((*c)->Classify({{"PATH_INFO", "/foo/bar/baz"}}) == "foo");
  }
  // The original zc.resumelb README's own spelling (a search, not anchored).
  auto seed = Classifier::Create(R"x(zc.resumelb.lb:re_classifier("PATH_INFO",r"/(?P<class>[^/]+)"))x");
  REQUIRE(seed.ok());
  CHECK((*seed)->Classify({{"PATH_INFO", "/app/x"}}) == "app");
}

TEST_CASE("regex classifier survives hostile input in linear time", "[classifier]") {
  auto c = Classifier::Create("re:PATH_INFO:^(?P<class>(a+)+)$");
  REQUIRE(c.ok());
  std::string evil(100000, 'a');
  evil += "!";
  CHECK((*c)->Classify({{"PATH_INFO", evil}}) == "");  // catastrophic for backtracking engines
}

TEST_CASE("bad classifier specs are refused with a message", "[classifier]") {
  for (const char* spec : {"bogus", "re:PATH_INFO:(unclosed", "re:PATH_INFO:/(?P<x>.*)",
                           "zc.resumelb.lb:re_classifier(PATH_INFO, r'x')", "re::x"}) {
    INFO(spec);
    auto c = Classifier::Create(spec);
    CHECK_FALSE(c.ok());
    CHECK_FALSE(c.status().message().empty());
  }
}

TEST_CASE("LB settings from ZooKeeper JSON: sources, coercion, revert", "[settings]") {
  using rlb::lb::ParseLbSettingsJson;
  auto p = ParseLbSettingsJson(R"({"variance": 3, "backlog_history": "6.2"})");
  REQUIRE(p.ok());
  CHECK(p->settings.variance == 3.0);
  CHECK(p->settings.backlog_history == 6);
  CHECK(p->settings.unskilled_score == 1.0);
  CHECK(p->sources["variance"] == "zookeeper");
  CHECK(p->sources["backlog_history"] == "zookeeper");
  CHECK(p->sources["unskilled_score"] == "default");
  CHECK(p->unknown_keys.empty());
  CHECK(p->rejected.empty());
  for (const char* empty : {"", "{}"}) {
    INFO(empty);
    p = ParseLbSettingsJson(empty);
    REQUIRE(p.ok());
    CHECK(p->settings.variance == 1.0);  // removed keys revert to the pool's defaults
    CHECK(p->settings.backlog_history == 9);
    CHECK(p->settings.unskilled_score == 1.0);
    const std::map<std::string, std::string> defaults = {
        {"backlog_history", "default"}, {"unskilled_score", "default"}, {"variance", "default"}};
    CHECK(p->sources == defaults);
  }
  for (const char* bad : {"nope", "[1]", "{", "null"}) {
    INFO(bad);
    auto r = ParseLbSettingsJson(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "data is not a JSON object");
  }
}

TEST_CASE("LB settings: null is the default, unknown keys are listed", "[settings]") {
  using rlb::lb::ParseLbSettingsJson;
  auto p = ParseLbSettingsJson(R"({"variance": null, "unskilled_score": 0.5})");
  REQUIRE(p.ok());
  CHECK(p->settings.variance == 1.0);
  CHECK(p->sources["variance"] == "default");
  CHECK(p->settings.unskilled_score == 0.5);
  CHECK(p->sources["unskilled_score"] == "zookeeper");
  CHECK(p->rejected.empty());
  p = ParseLbSettingsJson(
      R"({"varience": 2, "variance": 3, "workers ->": "/app", "colour": null, " ->": 1})");
  REQUIRE(p.ok());
  CHECK(p->settings.variance == 3.0);
  const std::vector<std::string> unknown = {"varience", "colour", " ->"};
  CHECK(p->unknown_keys == unknown);
  CHECK(p->rejected.empty());
}

TEST_CASE("LB settings: invalid values are rejected with the reason, per key", "[settings]") {
  using rlb::lb::ParseLbSettingsJson;
  struct Case {
    const char* json;
    const char* key;
    const char* reason;
  };
  for (const Case& c : {
           Case{R"({"variance": -1})", "variance", R"(pool setting variance="-1": must be > 0)"},
           Case{R"({"variance": 0})", "variance", R"(pool setting variance="0": must be > 0)"},
           Case{R"({"variance": "x"})", "variance",
                R"(pool setting variance="x": not a finite number)"},
           Case{R"({"variance": [1]})", "variance", "pool setting variance=[1]: not a number"},
           Case{R"({"variance": true})", "variance", "pool setting variance=true: not a number"},
           Case{R"({"backlog_history": 0})", "backlog_history",
                R"(pool setting backlog_history="0": must be >= 1)"},
           Case{R"({"backlog_history": {"a": 1}})", "backlog_history",
                R"(pool setting backlog_history={"a":1}: not a number)"},
           Case{R"({"unskilled_score": "nan"})", "unskilled_score",
                R"(pool setting unskilled_score="nan": not a finite number)"}}) {
    INFO(c.json);
    auto p = ParseLbSettingsJson(c.json);
    REQUIRE(p.ok());
    const std::map<std::string, std::string> want = {{c.key, c.reason}};
    CHECK(p->rejected == want);
    CHECK(p->sources[c.key] == "default");  // not taken from ZooKeeper
  }
  // Several at once; the valid ones are still parsed (the caller applies none of them).
  auto p = ParseLbSettingsJson(R"({"variance": -2, "backlog_history": 0, "unskilled_score": 2})");
  REQUIRE(p.ok());
  CHECK(p->rejected.size() == 2);
  CHECK(p->rejected.count("variance") == 1);
  CHECK(p->rejected.count("backlog_history") == 1);
  CHECK(p->settings.unskilled_score == 2.0);
  CHECK(p->sources["unskilled_score"] == "zookeeper");
}

TEST_CASE("LB settings: a key given twice counts once, the last one", "[settings]") {
  using rlb::lb::ParseLbSettingsJson;
  // Found by fuzz_config: a rejected value then a valid one left the key both rejected and
  // taken from ZooKeeper.
  auto p = ParseLbSettingsJson(R"({"variance": "x", "variance": 2})");
  REQUIRE(p.ok());
  CHECK(p->rejected.empty());
  CHECK(p->settings.variance == 2.0);
  CHECK(p->sources["variance"] == "zookeeper");
  p = ParseLbSettingsJson(R"({"variance": 2, "variance": -1})");
  REQUIRE(p.ok());
  CHECK(p->rejected.count("variance") == 1);
  CHECK(p->sources["variance"] == "default");
  p = ParseLbSettingsJson(R"({"variance": 2, "variance": null})");
  REQUIRE(p.ok());
  CHECK(p->rejected.empty());
  CHECK(p->settings.variance == 1.0);
  CHECK(p->sources["variance"] == "default");
}

TEST_CASE("a provider node's version: strings and numbers, else none", "[zookeeper]") {
  using rlb::lb::ParseWorkerVersion;
  CHECK(ParseWorkerVersion(R"({"version": "2"})") == "2");
  CHECK(ParseWorkerVersion(R"({"pid": 7, "version": 3})") == "3");
  CHECK(ParseWorkerVersion(R"({"version": 1.5})") == "1.5");
  for (const char* none : {"", "{}", "null", "[1]", R"({"version": null})",
                           R"({"version": true})", R"({"version": {"a": 1}})", "{\"version\""}) {
    INFO(none);
    CHECK_FALSE(ParseWorkerVersion(none).has_value());
  }
}

TEST_CASE("zc.zk symbolic links: relative and absolute targets", "[zookeeper]") {
  using rlb::ZkLinkTarget;
  CHECK(ZkLinkTarget("/lb", "workers", R"({"workers ->": "../pool/w"})") == "/pool/w");
  CHECK(ZkLinkTarget("/lb", "workers", R"({"workers ->": "/x//y/"})") == "/x/y");
  CHECK(ZkLinkTarget("/", "a", R"({"a ->": "b"})") == "/b");
  for (const char* none : {"", "{}", R"({"workers": "/x"})", R"({"workers ->": 5})",
                           R"({"other ->": "/x"})", "{\"workers ->\": \"/a\\u0000b\"}"}) {
    INFO(none);
    CHECK_FALSE(ZkLinkTarget("/lb", "workers", none).has_value());
  }
}

TEST_CASE("HOST:PORT addresses: forms, errors, and ToString as the inverse", "[address]") {
  using rlb::ParseHostPort;
  struct Ok { const char* text; const char* host; int port; const char* printed; };
  for (const Ok& c : {Ok{"127.0.0.1:2181", "127.0.0.1", 2181, "127.0.0.1:2181"},
                      Ok{":8080", "", 8080, ":8080"},
                      Ok{"[::1]:80", "::1", 80, "[::1]:80"},
                      Ok{"[localhost]:0", "localhost", 0, "localhost:0"},
                      Ok{"db.example:65535", "db.example", 65535, "db.example:65535"}}) {
    INFO(c.text);
    auto hp = ParseHostPort(c.text);
    REQUIRE(hp.ok());
    CHECK(hp->host == c.host);
    CHECK(hp->port == c.port);
    CHECK(hp->ToString() == c.printed);
    auto again = ParseHostPort(hp->ToString());
    REQUIRE(again.ok());
    CHECK(again->host == hp->host);
  }
  // "[[x]:1" is the fuzz_config finding: a bracket inside the host printed as "[x:1",
  // which did not parse back.
  for (const char* bad : {"", "8080", "host", "::1:80", "[::1]80", "[::1", "h:", "h:65536",
                          "h:-1", "h: 1", "h:1x", "[[x]:1", "a]b:1", "a b:1", "a\tb:1",
                          "[a\nb]:1"}) {
    INFO(bad);
    auto hp = ParseHostPort(bad);
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.status().IsInvalidArgument());
    CHECK(hp.status().message().find("address") != std::string::npos);
  }
}

TEST_CASE("LB settings: disabled is a list of worker addresses", "[settings]") {
  using rlb::lb::ParseLbSettingsJson;
  auto p = ParseLbSettingsJson(
      R"({"disabled": ["10.0.0.2:8001", "10.0.0.1:8001", "10.0.0.2:8001"], "variance": 2})");
  REQUIRE(p.ok());
  const std::set<std::string> want = {"10.0.0.1:8001", "10.0.0.2:8001"};
  CHECK(p->disabled == want);
  CHECK(p->rejected.empty());
  CHECK(p->unknown_keys.empty());
  CHECK(p->sources.count("disabled") == 0);  // not a pool setting
  CHECK(p->settings.variance == 2.0);
  for (const char* none : {"{}", R"({"disabled": null})", R"({"disabled": []})"}) {
    INFO(none);
    p = ParseLbSettingsJson(none);
    REQUIRE(p.ok());
    CHECK(p->disabled.empty());
    CHECK(p->rejected.empty());
  }
  // The last one given counts, as for every key.
  p = ParseLbSettingsJson(R"({"disabled": "x", "disabled": ["[::1]:80"]})");
  REQUIRE(p.ok());
  CHECK(p->rejected.empty());
  CHECK(p->disabled == std::set<std::string>{"[::1]:80"});
  struct Case {
    const char* json;
    const char* reason;
  };
  for (const Case& c : {
           Case{R"({"disabled": "10.0.0.1:8001"})", "disabled: not an array of HOST:PORT strings"},
           Case{R"({"disabled": [8001]})", "disabled: not an array of HOST:PORT strings"},
           Case{R"({"disabled": ["worker"]})",
                "disabled: address 'worker' is not of the form HOST:PORT"}}) {
    INFO(c.json);
    p = ParseLbSettingsJson(c.json);
    REQUIRE(p.ok());
    const std::map<std::string, std::string> want_rejected = {{"disabled", c.reason}};
    CHECK(p->rejected == want_rejected);
    CHECK(p->disabled.empty());
  }
}
