// Exchange and the pure HTTP pieces (response heads, own responses, chunks), without
// sockets: a fake host, client and link stand in for the LB, the client connection and a
// worker link.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "zklb/exchange.h"
#include "zklb/response_head.h"

namespace rlb::lb {
namespace {

class FakeHost : public ExchangeHost {
 public:
  void Dispatch(Exchange* e) override {
    ++dispatches;
    if (assign_to) {
      e->Assign(std::make_shared<PoolWorker>("w:1", std::nullopt), assign_to);
    } else {
      e->MarkWaiting();
      waiting = e;
    }
  }
  void ForgetWaiting(Exchange* e) override {
    if (waiting == e) waiting = nullptr;
    ++forgotten;
  }
  void ReleaseWorker(const PoolWorkerPtr&) override { ++released; }
  bool draining() const override { return is_draining; }
  bool AcquireRetry() override {
    if (retry_budget == 0) return false;
    --retry_budget;
    ++retries_held;
    return true;
  }
  void ReleaseRetry() override { --retries_held; }

  RequestChannel* assign_to = nullptr;
  Exchange* waiting = nullptr;
  int dispatches = 0, forgotten = 0, released = 0;
  int retry_budget = 100, retries_held = 0;
  bool is_draining = false;
};

class FakeClient : public ExchangeClient {
 public:
  void WriteResponse(std::string_view bytes) override { written += bytes; }
  void ResponseDone() override { ++done; }
  void Reset(const std::string& reason) override { reset_reason = reason; }
  void PauseReading() override { paused = true; }
  void ResumeReading() override { paused = false; }
  const ConnectionInfo& info() const override { return info_; }

  std::string written;
  int done = 0;
  std::string reset_reason;
  bool paused = false;
  ConnectionInfo info_{"10.0.0.1", "10.0.0.2", 4321, 80};
};

class FakeChannel : public RequestChannel {
 public:
  uint32_t SendRequest(LinkRequest*, std::string_view cls, const proto::Pairs&) override {
    log.push_back("REQUEST " + std::string(cls));
    return ++rno;
  }
  void SendBody(uint32_t, std::string_view data) override {
    log.push_back("BODY " + std::string(data));
  }
  void SendEnd(uint32_t) override { log.push_back("END"); }
  void Detach(uint32_t, bool cancel) override { log.push_back(cancel ? "CANCEL" : "DETACH"); }
  bool congested() const override { return is_congested; }
  void WaitWritable(LinkRequest*) override { log.push_back("WAIT"); }
  void PauseReads(LinkRequest*) override { log.push_back("PAUSE"); }
  void ResumeReads(LinkRequest*) override { log.push_back("RESUME"); }

  std::vector<std::string> log;
  uint32_t rno = 0;
  bool is_congested = false;
};

ParsedRequest Get(std::string method = "GET", int minor = 1) {
  ParsedRequest r;
  r.method = std::move(method);
  r.url = "/x";
  r.http_minor = minor;
  return r;
}

struct Fixture {
  FakeHost host;
  FakeClient client;
  FakeChannel link;
  LbStats stats;
  std::string disconnect = "<gone>";
  ExchangePolicy Policy(int max_retries = 5) {
    ExchangePolicy p;
    p.max_retries = max_retries;
    p.disconnect_message = &disconnect;
    p.stats = &stats;
    p.http_date = nullptr;  // no Date: the cases below compare exact bytes
    return p;
  }
};

proto::Response Ok(proto::Pairs headers) { return proto::Response{"200 OK", std::move(headers)}; }

TEST_CASE("an exchange relays a response with a length unchanged", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "a.example");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  CHECK(e.state() == Exchange::State::kSent);
  CHECK(f.link.log == std::vector<std::string>{"REQUEST a.example", "END"});
  e.OnResponseStart(Ok({{"Content-Length", "5"}, {"Connection", "keep-alive"}}));
  CHECK(e.state() == Exchange::State::kResponding);
  e.OnResponseBody("hello");
  e.OnResponseEnd(proto::Outcome::kComplete);
  CHECK(e.state() == Exchange::State::kDone);
  CHECK(f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(f.client.done == 1);
  CHECK(f.host.released == 1);
  CHECK(f.stats.requests == 1);
}

TEST_CASE("a response without a length is chunked for HTTP/1.1 and closes for 1.0", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  SECTION("HTTP/1.1") {
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    f.host.Dispatch(&e);
    e.OnRequestComplete();
    e.OnResponseStart(Ok({}));
    e.OnResponseBody("abc");
    e.OnResponseEnd(proto::Outcome::kComplete);
    CHECK(f.client.written ==
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    CHECK_FALSE(e.close_after());
  }
  SECTION("HTTP/1.0") {
    Exchange e(&f.host, &f.client, f.Policy(), Get("GET", 0), {}, "c");
    f.host.Dispatch(&e);
    e.OnRequestComplete();
    e.OnResponseStart(Ok({}));
    e.OnResponseBody("abc");
    e.OnResponseEnd(proto::Outcome::kComplete);
    CHECK(f.client.written == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc");
    CHECK(e.close_after());
  }
}

TEST_CASE("HEAD responses carry no body", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  Exchange e(&f.host, &f.client, f.Policy(), Get("HEAD"), {}, "c");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  e.OnResponseStart(Ok({{"Content-Length", "5"}}));
  e.OnResponseBody("hello");
  e.OnResponseEnd(proto::Outcome::kComplete);
  CHECK(f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
}

TEST_CASE("a GET whose link is lost before the response is re-dispatched", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  Exchange e(&f.host, &f.client, f.Policy(2), Get(), {}, "c");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  // The LB dropped the link (not the worker's fault): retried, at most max_retries times.
  e.OnLinkLost({LinkFailure::kStopping, ""});
  CHECK(f.host.dispatches == 2);
  CHECK(f.stats.retries == 1);
  CHECK(e.state() == Exchange::State::kSent);
  e.OnLinkLost({LinkFailure::kStopping, ""});
  CHECK(f.stats.retries == 2);
  CHECK(f.host.retries_held == 1);  // one budget slot for the request, however often
  // max_retries spent: the next loss answers 502 with the disconnect page.
  e.OnLinkLost({LinkFailure::kStopping, ""});
  CHECK(f.host.dispatches == 3);
  CHECK(e.state() == Exchange::State::kDone);
  CHECK(f.stats.bad_gateway == 1);
  CHECK(f.client.written.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0) == 0);
  CHECK(f.client.written.find("<gone>") != std::string::npos);
  CHECK(f.host.released == 3);
  e.Finish();
  CHECK(f.host.retries_held == 0);
}

TEST_CASE("a request that a second worker dies with is a suspected query of death",
          "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  Exchange e(&f.host, &f.client, f.Policy(5), Get(), {}, "c");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  e.OnLinkLost({LinkFailure::kClosedByWorker, ""});  // first death: retried, now a suspect
  CHECK(f.stats.retries == 1);
  e.OnLinkLost({LinkFailure::kReadError, "connection reset by peer"});  // second death
  CHECK(f.host.dispatches == 2);  // never a third worker, although max_retries is 5
  CHECK(e.state() == Exchange::State::kDone);
  CHECK(f.stats.queries_of_death == 1);
  CHECK(f.stats.bad_gateway == 1);
}

TEST_CASE("a retry the budget does not allow is answered 502", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  f.host.retry_budget = 0;
  Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  e.OnLinkLost({LinkFailure::kClosedByWorker, ""});
  CHECK(f.host.dispatches == 1);
  CHECK(f.stats.retries_refused == 1);
  CHECK(f.stats.bad_gateway == 1);
}

TEST_CASE("a client that leaves before the answer is logged as 499", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
  f.host.Dispatch(&e);
  e.OnRequestComplete();
  e.ClientGone();
  CHECK(e.state() == Exchange::State::kAbandoned);
  CHECK(f.stats.client_aborts == 1);
  CHECK(e.AccessLogLine(0).find("\" 499 0 ") != std::string::npos);
  e.Finish();
  CHECK(f.link.log.back() == "CANCEL");
}

TEST_CASE("a POST is never re-dispatched; a draining LB retries nothing", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  SECTION("POST") {
    ParsedRequest r = Get("POST");
    r.content_length = 3;
    Exchange e(&f.host, &f.client, f.Policy(), r, {}, "c");
    f.host.Dispatch(&e);
    e.OnBody("abc");
    e.OnRequestComplete();
    e.OnLinkLost({LinkFailure::kClosedByWorker, ""});
    CHECK(f.host.dispatches == 1);
    CHECK(f.stats.bad_gateway == 1);
  }
  SECTION("draining") {
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    f.host.Dispatch(&e);
    e.OnRequestComplete();
    f.host.is_draining = true;
    e.OnLinkLost({LinkFailure::kClosedByWorker, ""});
    CHECK(f.host.dispatches == 1);
    CHECK(f.client.written.find("Connection: close") != std::string::npos);
  }
}

TEST_CASE("a response cut off after it started resets the client", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  SECTION("worker lost mid-body") {
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    f.host.Dispatch(&e);
    e.OnRequestComplete();
    e.OnResponseStart(Ok({{"Content-Length", "10"}}));
    e.OnLinkLost({LinkFailure::kReadError, "connection reset by peer"});
    CHECK(e.state() == Exchange::State::kReset);
    CHECK(f.client.reset_reason == "worker lost mid-response");
    CHECK(f.host.dispatches == 1);
    CHECK(f.stats.truncated == 1);
  }
  SECTION("RESPONSE_END failed") {
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    f.host.Dispatch(&e);
    e.OnRequestComplete();
    e.OnResponseStart(Ok({}));
    e.OnResponseEnd(proto::Outcome::kFailed);
    CHECK(e.state() == Exchange::State::kReset);
    CHECK_FALSE(f.client.reset_reason.empty());
  }
}

TEST_CASE("body received before a worker is chosen waits, then goes first", "[exchange]") {
  Fixture f;
  ParsedRequest r = Get("PUT");
  r.content_length = 6;
  Exchange e(&f.host, &f.client, f.Policy(), r, {}, "c");
  f.host.Dispatch(&e);  // no worker: waits
  CHECK(e.state() == Exchange::State::kWaiting);
  e.OnBody("abc");
  e.OnBody("def");
  e.OnRequestComplete();
  e.Assign(std::make_shared<PoolWorker>("w:1", std::nullopt), &f.link);
  CHECK(f.link.log == std::vector<std::string>{"REQUEST c", "BODY abcdef", "END"});
}

TEST_CASE("a congested link pauses the upload until it is writable", "[exchange]") {
  Fixture f;
  f.host.assign_to = &f.link;
  ParsedRequest r = Get("PUT");
  r.content_length = 100;
  Exchange e(&f.host, &f.client, f.Policy(), r, {}, "c");
  f.host.Dispatch(&e);
  f.link.is_congested = true;
  e.OnBody("a");
  e.OnBody("bc");
  CHECK(f.link.log.back() == "REQUEST c");  // gathered until the read is done
  e.FlushBody();
  CHECK(f.link.log[1] == "BODY abc");  // one frame
  CHECK(f.client.paused);
  CHECK(f.link.log.back() == "WAIT");
  e.OnLinkWritable();
  CHECK_FALSE(f.client.paused);
}

TEST_CASE("no worker in time answers 503; Finish leaves the queue and cancels", "[exchange]") {
  Fixture f;
  SECTION("503") {
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    e.OnRequestComplete();
    f.host.Dispatch(&e);
    e.NoWorker();
    CHECK(f.client.written.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CHECK(f.stats.unavailable == 1);
    CHECK(e.response_done());
  }
  SECTION("waiting") {
    {
      Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
      f.host.Dispatch(&e);
    }  // destroyed while waiting
    CHECK(f.host.forgotten == 1);
    CHECK(f.host.waiting == nullptr);
  }
  SECTION("sent") {
    f.host.assign_to = &f.link;
    Exchange e(&f.host, &f.client, f.Policy(), Get(), {}, "c");
    f.host.Dispatch(&e);
    e.Finish();
    e.Finish();  // idempotent
    CHECK(f.link.log.back() == "CANCEL");
    CHECK(f.host.released == 1);
  }
}

TEST_CASE("response heads drop hop-by-hop headers and honour Connection: close", "[http]") {
  ResponseContext c;
  ResponseHead h = *BuildResponseHead(
      proto::Response{"204 No Content",
                      {{"Keep-Alive", "5"}, {"connection", "close"}, {"X-A", "1"}}},
      c);
  CHECK(h.bytes == "HTTP/1.1 204 No Content\r\nX-A: 1\r\nConnection: close\r\n\r\n");
  CHECK(h.no_body);
  CHECK_FALSE(h.chunked);
  CHECK(h.close_after);
  c.must_close = true;
  h = *BuildResponseHead(proto::Response{"200 OK", {{"Content-Length", "0"}}}, c);
  CHECK(h.bytes == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST_CASE("own responses and chunks", "[http]") {
  CHECK(BuildOwnResponse(431, "text/plain", "no", true, false, "") ==
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\nno");
  CHECK(BuildOwnResponse(503, "text/plain", "no", false, true, "") ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n");
  CHECK(EncodeChunk(std::string(26, 'x')) == "1a\r\n" + std::string(26, 'x') + "\r\n");
  CHECK(std::string(ReasonPhrase(599)) == "Error");
  CHECK(BuildOwnResponse(405, "text/plain", "", true, false, "").find(
            "\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n") != std::string::npos);
}

std::string_view FixedDate() { return "Sun, 06 Nov 1994 08:49:37 GMT"; }

// An exchange for `request` whose response has started with `response`.
struct Responding {
  explicit Responding(proto::Response response, ParsedRequest request = Get(),
                      bool with_date = false) {
    f.host.assign_to = &f.link;
    ExchangePolicy policy = f.Policy();
    if (with_date) policy.http_date = &FixedDate;
    e = std::make_unique<Exchange>(&f.host, &f.client, policy, request, proto::Pairs{}, "c");
    f.host.Dispatch(e.get());
    e->OnRequestComplete();
    e->OnResponseStart(std::move(response));
  }
  Fixture f;
  std::unique_ptr<Exchange> e;
};

TEST_CASE("bytes past the Content-Length are dropped and the connection closes", "[exchange]") {
  SECTION("in a later frame") {
    Responding r(Ok({{"Content-Length", "5"}}));
    r.e->OnResponseBody("hel");
    r.e->OnResponseBody("lo");
    CHECK_FALSE(r.e->close_after());
    r.e->OnResponseBody("HTTP/1.1 302 Found\r\nSet-Cookie: forged=1\r\n\r\n");
    CHECK(r.f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(r.e->state() == Exchange::State::kDone);
    CHECK(r.e->close_after());
    CHECK(r.f.client.done == 1);
    CHECK(r.f.link.log.back() == "CANCEL");  // the worker stops producing
    CHECK(r.f.host.released == 1);
    r.e->OnResponseBody("more");  // late frames change nothing
    CHECK(r.f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  }
  SECTION("in the same frame") {
    Responding r(Ok({{"Content-Length", "5"}}));
    r.e->OnResponseBody("helloEXTRA");
    CHECK(r.f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(r.e->close_after());
    CHECK(r.e->response_done());
  }
  SECTION("a zero length") {
    Responding r(Ok({{"Content-Length", "0"}}));
    r.e->OnResponseBody("x");
    CHECK(r.f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK(r.e->close_after());
  }
}

TEST_CASE("a response shorter than its Content-Length resets the client", "[exchange]") {
  Responding r(Ok({{"Content-Length", "10"}}));
  r.e->OnResponseBody("hello");
  r.e->OnResponseEnd(proto::Outcome::kComplete);
  CHECK(r.e->state() == Exchange::State::kReset);
  CHECK_FALSE(r.f.client.reset_reason.empty());
  CHECK(r.f.client.done == 0);
  CHECK(r.f.stats.truncated == 1);
  // A HEAD response declares the length of the body it does not carry: not short.
  Responding head(Ok({{"Content-Length", "10"}}), Get("HEAD"));
  head.e->OnResponseEnd(proto::Outcome::kComplete);
  CHECK(head.e->state() == Exchange::State::kDone);
}

TEST_CASE("an invalid response head is answered 502 and the worker's request cancelled",
          "[exchange]") {
  for (const proto::Response& bad : std::vector<proto::Response>{
           {"200 OK", {{"Content-Length", "abc"}}},
           {"200 OK", {{"Content-Length", ""}}},
           {"200 OK", {{"Content-Length", "-1"}}},
           {"200 OK", {{"Content-Length", "99999999999999999999999"}}},
           {"200 OK", {{"Content-Length", "5"}, {"Content-Length", "6"}}},
           {"200 OK\r\nSet-Cookie: x=1", {}},
           {"200 OK", {{"X-A b", "1"}}},
           {"200 OK", {{"", "1"}}},
           {"200 OK", {{"X-A:", "1"}}},
           {"200 OK", {{"X-A", std::string("a\0b", 3)}}},
           {"200 OK", {{"X-A", "a\vb"}}},
           {"200 OK", {{"X-A", "a\x7f"}}},
           {"200 OK", {{"X-A", "a\r\nX-B: 1"}}},
       }) {
    INFO(bad.status << " " << (bad.headers.empty() ? "" : bad.headers[0].first));
    Responding r(bad);
    CHECK(r.e->state() == Exchange::State::kDone);
    CHECK(r.f.client.written.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0) == 0);
    CHECK(r.f.client.written.find("<gone>") != std::string::npos);
    CHECK(r.f.link.log.back() == "CANCEL");
    CHECK(r.f.stats.bad_gateway == 1);
    r.e->OnResponseBody("ignored");
    CHECK(r.f.client.written.find("ignored") == std::string::npos);
  }
}

TEST_CASE("response heads: OWS trimmed, one of equal lengths, Date added when absent", "[http]") {
  ResponseContext c;
  c.date = "Sun, 06 Nov 1994 08:49:37 GMT";
  StatusOr<ResponseHead> h = BuildResponseHead(
      Ok({{"Set-Cookie", "  csrftoken=x \t"}, {"Content-Length", " 3"}, {"Content-Length", "3"},
          {"X-Tab", "a\tb"}, {"X-Latin", "caf\xe9"}}),
      c);
  REQUIRE(h.ok());
  CHECK(h->bytes == "HTTP/1.1 200 OK\r\nSet-Cookie: csrftoken=x\r\nContent-Length: 3\r\n"
                    "X-Tab: a\tb\r\nX-Latin: caf\xe9\r\n"
                    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
  CHECK(h->content_length == 3u);
  h = BuildResponseHead(Ok({{"date", "Mon, 07 Nov 1994 08:49:37 GMT"}}), c);
  REQUIRE(h.ok());
  CHECK(h->bytes == "HTTP/1.1 200 OK\r\ndate: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
  // No Content-Length in a 204 (RFC 9110 section 8.6).
  h = BuildResponseHead(proto::Response{"204 No Content", {{"Content-Length", "0"}}}, {});
  REQUIRE(h.ok());
  CHECK(h->bytes == "HTTP/1.1 204 No Content\r\n\r\n");
  std::string_view now = HttpDateNow();
  CHECK(now.size() == 29);
  CHECK(now.substr(25) == " GMT");
}

TEST_CASE("the exchange adds Date to relayed and own responses", "[exchange]") {
  Responding r(Ok({{"Content-Length", "0"}}), Get(), /*with_date=*/true);
  r.e->OnResponseEnd(proto::Outcome::kComplete);
  CHECK(r.f.client.written == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                              "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
  Responding bad(proto::Response{"200 OK", {{"Content-Length", "x"}}}, Get(), true);
  CHECK(bad.f.client.written.find("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n") !=
        std::string::npos);
}

TEST_CASE("HTTP/1.0 keep-alive is honoured with Content-Length framing", "[exchange]") {
  ParsedRequest keep = Get("GET", 0);
  keep.keep_alive = true;  // "Connection: keep-alive" (llhttp_should_keep_alive)
  Responding r(Ok({{"Content-Length", "2"}}), keep);
  r.e->OnResponseBody("ok");
  r.e->OnResponseEnd(proto::Outcome::kComplete);
  CHECK(r.f.client.written ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  CHECK_FALSE(r.e->close_after());
  ParsedRequest once = Get("GET", 0);
  once.keep_alive = false;
  Responding c(Ok({{"Content-Length", "2"}}), once);
  CHECK(c.f.client.written ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  CHECK(c.e->close_after());
  // Without a length, an HTTP/1.0 response is still close-delimited.
  Responding n(Ok({}), keep);
  CHECK(n.e->close_after());
  // The LB's own responses announce it too.
  Responding bad(proto::Response{"200 OK", {{"Content-Length", "x"}}}, keep);
  CHECK(bad.f.client.written.find("Connection: keep-alive\r\n") != std::string::npos);
  CHECK_FALSE(bad.e->close_after());
}

}  // namespace
}  // namespace rlb::lb
