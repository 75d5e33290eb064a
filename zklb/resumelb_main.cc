// resumelb: the basic résumé-based load balancer with a static list of workers.
//
//   resumelb [options] WORKER_ADDR...        e.g. resumelb -LINFO -a :8080 127.0.0.1:8000
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <glog/logging.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/program.h"
#include "common/reload_signals.h"
#include "common/shutdown_signals.h"
#include "status/lb_status.h"
#include "status/status_server.h"
#include "zklb/classifier.h"
#include "zklb/lb_admin.h"
#include "zklb/lb_command_line.h"
#include "common/uv_handle.h"
#include "zklb/load_balancer.h"
#include "zklb/startup_checks.h"

namespace {

constexpr char kUsage[] = R"(resumelb: a résumé-based load balancer for WSGI workers (zkworker).

Usage: resumelb [options] WORKER_ADDR...

WORKER_ADDR is HOST:PORT of a zkworker. Requests are classified (by Host by default) and
sent to the worker most skilled at the class whose backlog is not too far above the rest,
else to the least recently used worker.

Signals: SIGTERM and SIGINT stop accepting, let requests in flight finish (--drain_timeout)
and exit 0; SIGHUP reopens the access log (-l) and re-reads the disconnect page (-e), for
logrotate and `systemctl reload`; SIGUSR1 and SIGUSR2 are ignored.

)";

// One load balancer process: its loop, listener, status socket and admin listener, until
// SIGTERM/SIGINT has drained it. Returns the exit status.
int RunLoadBalancer(const rlb::lb::LbOptions& options,
                    const std::map<std::string, std::optional<std::string>>& workers,
                    const std::shared_ptr<rlb::lb::Classifier>& classifier) {
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  rlb::lb::LoadBalancer lb(loop, options, rlb::lb::NewPoolFromOptions(options, options.pool_settings),
                          classifier);
  rlb::Status s = lb.Start();
  if (!s.ok()) return rlb::Fail(s.message());
  std::unique_ptr<rlb::StatusServer> status;
  if (!options.status_socket.empty()) {
    auto started = rlb::lb::StartStatusSocket(loop, options, [&lb] {
      return rlb::RenderLbStatusJson(lb.StatusSnapshot());
    });
    if (!started.ok()) return rlb::Fail(started.status().message());
    status = std::move(*started);
  }
  std::unique_ptr<rlb::AdminServer> admin;
  if (options.admin_address) {
    auto started = rlb::lb::StartAdminServer(loop, options, [&lb] { return lb.StatusSnapshot(); });
    if (!started.ok()) return rlb::Fail(started.status().message());
    admin = std::move(*started);
  }
  lb.SetWorkers(workers);
  LOG(INFO) << "resumelb listening on " << lb.address().ToString() << " (pid " << getpid()
            << ", " << workers.size() << " worker address" << (workers.size() == 1 ? "" : "es")
            << ")";

  // SIGHUP reopens the access log and re-reads the disconnect page (logrotate, systemctl
  // reload); SIGUSR1/SIGUSR2 are ignored. Only SIGTERM/SIGINT end the LB.
  rlb::ReloadSignals reload(loop, [&lb] { lb.ReopenFiles(); });
  rlb::ShutdownSignals signals(loop, [&](int) {
    if (status) status->Close();
    if (admin) admin->Close();
    lb.Shutdown([&] {
      signals.Close();
      reload.Close();
    });
  });
  uv_run(loop, UV_RUN_DEFAULT);
  // The reload handles are closed: a late SIGHUP must not turn this clean exit into a kill.
  for (int signum : {SIGHUP, SIGUSR1, SIGUSR2}) signal(signum, SIG_IGN);
  rlb::CloseLoop(loop);
  LOG(INFO) << "exiting";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  rlb::StartProgram("resumelb", std::string(kUsage) + rlb::lb::LbFlagsHelp(), argc, argv);
  if (rlb::lb::WantsVersion(argc, argv)) {
    std::fputs(rlb::lb::LbVersionText("resumelb").c_str(), stdout);
    return 0;
  }
  rlb::InitLogging(argv[0]);
  auto args = rlb::lb::TranslateArgs(argc, argv, rlb::lb::ResumelbShortOptions());
  if (!args.ok()) return rlb::Fail(args.status().message());
  auto positional = rlb::lb::ParseFlags(*args);
  if (!positional.ok()) return rlb::Fail(positional.status().message());
  if (positional->empty()) {
    return rlb::Fail("must supply one or more worker addresses (see --help)");
  }
  auto options = rlb::lb::OptionsFromFlags(4.0);
  if (!options.ok()) return rlb::Fail(options.status().message());
  std::map<std::string, std::optional<std::string>> workers;
  for (const auto& a : *positional) {
    auto hp = rlb::ParseHostPort(a);
    if (!hp.ok()) return rlb::Fail(hp.status().message());
    if (hp->host.empty()) hp->host = "127.0.0.1";
    workers[hp->ToString()] = std::nullopt;
  }
  auto classifier = rlb::lb::Classifier::Create(options->classifier);
  if (!classifier.ok()) return rlb::Fail(classifier.status().message());
  if (rlb::lb::CheckOnly()) {
    rlb::Status checked = rlb::lb::CheckFiles(*options);
    if (!checked.ok()) return rlb::Fail(checked.message());
    std::printf("resumelb: the options are valid\n");
    return 0;
  }

  auto status = rlb::lb::RunLbProcesses("resumelb", *options, [&](const rlb::lb::LbOptions& o) {
    return RunLoadBalancer(o, workers, *classifier);
  });
  if (!status.ok()) return rlb::Fail(status.status().message());
  return *status;
}
