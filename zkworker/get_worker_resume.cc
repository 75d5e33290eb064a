// get-worker-resume HOST:PORT...: prints each worker's address, then its résumé as a JSON
// object with sorted keys. A worker that does not answer within --timeout seconds gets one
// error line on stderr and makes the exit status non-zero; the others are still printed.
#include <algorithm>
#include <cstdio>
#include <string>

#include <gflags/gflags.h>

#include "common/frame_codec.h"
#include "common/json.h"
#include "common/link_auth.h"
#include "common/net_address.h"
#include "common/program.h"
#include "status/tool_client.h"

DEFINE_double(timeout, 5.0, "seconds to wait for each worker");
DEFINE_string(link_secret_file, "", "file holding the workers' link secret (as given to "
              "zkworker --link_secret_file)");

namespace {

constexpr char kUsage[] = R"(get-worker-resume: print the résumé of resumelb workers.

Usage: get-worker-resume [--timeout=SECONDS] [--link_secret_file=PATH] HOST:PORT...

For each worker: its address on one line, then its résumé (request class -> score in
requests per second) as a JSON object with sorted keys. A worker that does not answer
within the timeout (5 s) gets an error line on stderr; the exit status is then 1.
Workers started with --link_secret_file answer only a client that proves the same secret:
give the same file (mode 0600) with --link_secret_file.
)";

// Says HELLO to the worker at `addr_text` (then, with a secret, proves it and checks the
// worker's proof) and waits for its HELLO and its RESUME.
rlb::StatusOr<rlb::proto::ResumeEntries> Fetch(const std::string& addr_text, double timeout,
                                               const std::string& secret) {
  auto hp = rlb::ParseHostPort(addr_text);
  if (!hp.ok()) return hp.status();
  auto conn = rlb::ToolConnection::ConnectTcp(*hp, rlb::ToolConnection::DeadlineIn(timeout));
  if (!conn.ok()) return conn.status();
  std::string hello;
  rlb::proto::EncodeHello(&hello, rlb::proto::MakeHello("tool", "get-worker-resume"));
  rlb::LinkHandshake auth(&secret, rlb::LinkHandshake::Side::kConnecting);
  auth.AppendOpening(&hello);
  rlb::Status s = (*conn)->Send(hello);
  if (!s.ok()) return s;

  rlb::proto::FrameDecoder decoder;
  bool got_hello = false;
  std::string input;
  for (;;) {
    rlb::proto::Frame frame;
    rlb::Status error;
    auto r = decoder.Next(&frame, &error);
    if (r == rlb::proto::FrameDecoder::Result::kError) return error;
    if (r == rlb::proto::FrameDecoder::Result::kFrame) {
      if (got_hello && (frame.kind == rlb::proto::Kind::kChallenge ||
                        frame.kind == rlb::proto::Kind::kProof)) {
        std::string reply;
        s = auth.OnFrame(frame, &reply);
        if (!s.ok()) return rlb::Status::PermissionDenied("worker " + s.message());
        if (!reply.empty()) {
          s = (*conn)->Send(reply);
          if (!s.ok()) return s;
        }
        continue;
      }
      if (got_hello && !auth.peer_proved()) {
        return rlb::Status::PermissionDenied("worker " + auth.RefuseUnproved(frame).message());
      }
      if (frame.kind == rlb::proto::Kind::kHello) {
        rlb::proto::Hello peer;
        s = rlb::proto::ParseHello(frame.payload, &peer);
        if (!s.ok()) return s;
        got_hello = true;
      } else if (frame.kind == rlb::proto::Kind::kResume) {
        if (!got_hello) return rlb::Status::ProtocolError("RESUME before HELLO");
        rlb::proto::ResumeEntries entries;
        s = rlb::proto::ParseResume(frame.payload, &entries);
        if (!s.ok()) return s;
        return entries;
      }
      continue;
    }
    input.clear();
    auto more = (*conn)->Read(&input);
    if (!more.ok()) {
      if (more.status().IsTimeout()) {
        return rlb::Status::Timeout("no résumé within " + std::to_string(timeout) + " s");
      }
      return more.status();
    }
    if (!*more) {
      return rlb::Status::IOError(
          auth.has_secret() && !auth.peer_proved()
              ? "connection closed before the résumé arrived (does the worker have the same "
                "link secret?)"
              : "connection closed before the résumé arrived");
    }
    decoder.Feed(input);
  }
}

}  // namespace

int main(int argc, char** argv) {
  rlb::StartProgram("get-worker-resume", kUsage, argc, argv);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (!(FLAGS_timeout > 0 && FLAGS_timeout <= 3600)) {
    return rlb::Fail("--timeout must be > 0 and at most 3600");
  }
  if (argc < 2) return rlb::Fail("give one or more worker addresses HOST:PORT");
  std::string secret;
  if (!FLAGS_link_secret_file.empty()) {
    auto read = rlb::ReadLinkSecretFile(FLAGS_link_secret_file);
    if (!read.ok()) return rlb::Fail(read.status().message());
    secret = std::move(*read);
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    auto entries = Fetch(argv[i], FLAGS_timeout, secret);
    if (!entries.ok()) {
      rlb::ReportError(std::string(argv[i]) + ": " + entries.status().message());
      status = 1;
      continue;
    }
    std::sort(entries->begin(), entries->end());
    rlb::proto::ResumeEntries& e = *entries;
    rapidjson::StringBuffer out;
    rlb::JsonWriter w(out);
    w.StartObject();
    for (const auto& [cls, score] : e) {
      w.Key(cls.data(), static_cast<rapidjson::SizeType>(cls.size()));
      w.Double(score);
    }
    w.EndObject();
    std::printf("%s\n%s\n", argv[i], out.GetString());
    std::fflush(stdout);
  }
  return status;
}
