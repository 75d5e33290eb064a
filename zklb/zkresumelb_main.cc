// zkresumelb: the ZooKeeper-native load balancer.
//
//   zkresumelb [options] ZK_CONNECTION PATH       e.g. zkresumelb -LINFO 127.0.0.1:2181 /lb
//
// Workers are discovered under PATH/workers/providers, settings are read live from PATH's
// JSON data, and the LB registers itself under PATH/providers.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <uv.h>

#include "common/logging_setup.h"
#include "common/program.h"
#include "common/reload_signals.h"
#include "common/shutdown_signals.h"
#include "common/zk_session.h"
#include "status/lb_status.h"
#include "status/status_server.h"
#include "zklb/classifier.h"
#include "zklb/lb_admin.h"
#include "zklb/lb_command_line.h"
#include "common/uv_handle.h"
#include "zklb/load_balancer.h"
#include "zklb/startup_checks.h"
#include "zklb/zk_discovery.h"

DEFINE_double(zookeeper_session_timeout, 10.0, "ZooKeeper session timeout, seconds");
DEFINE_string(zookeeper_auth, "", "ZooKeeper credentials: digest:USER:PASSWORD or file:PATH");

namespace {

constexpr char kUsage[] = R"(zkresumelb: the ZooKeeper-native résumé-based load balancer.

Usage: zkresumelb [options] ZK_CONNECTION PATH

ZK_CONNECTION is a ZooKeeper connection string (host:port[,host:port...]). Workers are
found under PATH/workers/providers (zc.zk symbolic links such as "workers ->": "../app" are
followed); the settings variance, backlog_history and unskilled_score are read live from
PATH's JSON data (a key removed or null reverts to its default: 1.0, 9, 1.0; unknown keys
are logged as a warning; data with an invalid value is refused as a whole, the settings in
force stay and the status document lists the refused values under settings.rejected).
"disabled": ["HOST:PORT", ...] in PATH's data takes those workers out of the pool live
(requests in flight finish; deploy/zk-tree --disable/--enable edits the list).
The LB registers its HTTP address (for a wildcard host: the machine's primary address,
one node) as an ephemeral node PATH/providers/HOST:PORT with
{"pid": ...}; a node of that address held by another ZooKeeper session is never deleted:
the LB waits for it to go (a crashed LB's node goes when its session expires) and
registers then, serving meanwhile.

Signals: SIGTERM and SIGINT deregister, stop accepting, let requests in flight finish
(--drain_timeout) and exit 0; SIGHUP reopens the access log (-l) and re-reads the
disconnect page (-e), for logrotate and `systemctl reload`; SIGUSR1 and SIGUSR2 are ignored.

  -v, --single_version           use only the workers of the version most workers run
      --zookeeper_session_timeout=S   ZooKeeper session timeout (10)
      --zookeeper_auth=digest:USER:PASSWORD
                                      authenticate to ZooKeeper (a tree made with
                                      deploy/zk-tree --auth); file:PATH reads it from
                                      a file, keeping the password out of `ps`
)";

// One load balancer process: its loop, listener, ZooKeeper session, status socket and admin
// listener, until SIGTERM/SIGINT has drained it. Returns the exit status.
int RunLoadBalancer(const rlb::lb::LbOptions& options, const std::string& zk_hosts,
                    const std::optional<rlb::ZkAuth>& zk_auth,
                    const std::string& path,
                    const std::shared_ptr<rlb::lb::Classifier>& classifier) {
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  rlb::lb::LoadBalancer lb(loop, options, rlb::lb::NewPoolFromOptions(options, rlb::lb::PoolSettings{}),
                          classifier);
  rlb::Status s = lb.Start();
  if (!s.ok()) return rlb::Fail(s.message());

  rlb::ZkSession zk(loop, zk_hosts, static_cast<int>(FLAGS_zookeeper_session_timeout * 1000));
  if (zk_auth) zk.SetAuth(*zk_auth);
  rlb::lb::ZkDiscovery discovery(loop, &zk, &lb, path,
                                 options.single_version || !rlb::lb::IsResumePool(options));
  // The processes of a group share one address: one holds the registration, the others
  // take it over when it goes.
  if (options.processes > 1) discovery.ShareRegistration();
  s = zk.Start();
  if (!s.ok()) return rlb::Fail(s.message());
  discovery.Start();

  auto snapshot = [&] {
    rlb::LbStatusSnapshot snapshot = lb.StatusSnapshot();
    snapshot.zookeeper = discovery.StatusSnapshot();
    return snapshot;
  };
  std::unique_ptr<rlb::StatusServer> status;
  if (!options.status_socket.empty()) {
    auto started = rlb::lb::StartStatusSocket(
        loop, options, [&] { return rlb::RenderLbStatusJson(snapshot()); });
    if (!started.ok()) return rlb::Fail(started.status().message());
    status = std::move(*started);
  }
  std::unique_ptr<rlb::AdminServer> admin;
  if (options.admin_address) {
    auto started = rlb::lb::StartAdminServer(loop, options, snapshot);
    if (!started.ok()) return rlb::Fail(started.status().message());
    admin = std::move(*started);
  }
  LOG(INFO) << "zkresumelb listening on " << lb.address().ToString() << " (pid " << getpid()
            << ", ZooKeeper " << zk_hosts << " " << path << ")";

  // SIGHUP reopens the access log and re-reads the disconnect page (logrotate, systemctl
  // reload); SIGUSR1/SIGUSR2 are ignored. Only SIGTERM/SIGINT end the LB.
  rlb::ReloadSignals reload(loop, [&lb] { lb.ReopenFiles(); });
  rlb::ShutdownSignals signals(loop, [&](int) {
    discovery.Deregister();  // deregister first: new clients stop finding this LB
    if (status) status->Close();
    if (admin) admin->Close();
    lb.Shutdown([&] {
      discovery.Stop();
      zk.Close();
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
  rlb::StartProgram("zkresumelb", std::string(kUsage) + "\n" + rlb::lb::LbFlagsHelp(), argc, argv);
  if (rlb::lb::WantsVersion(argc, argv)) {
    std::fputs(rlb::lb::LbVersionText("zkresumelb").c_str(), stdout);
    return 0;
  }
  rlb::InitLogging(argv[0]);
  auto args = rlb::lb::TranslateArgs(argc, argv, rlb::lb::ZkResumelbShortOptions());
  if (!args.ok()) return rlb::Fail(args.status().message());
  auto positional = rlb::lb::ParseFlags(*args);
  if (!positional.ok()) return rlb::Fail(positional.status().message());
  if (positional->size() != 2) {
    return rlb::Fail("must supply a zookeeper connection string and path (see --help)");
  }
  const std::string zk_hosts = (*positional)[0];
  const std::string path = (*positional)[1];
  if (path.empty() || path[0] != '/') {
    return rlb::Fail("PATH must be absolute, got '" + path + "'");
  }
  if (!(FLAGS_zookeeper_session_timeout > 0 && FLAGS_zookeeper_session_timeout <= 3600)) {
    return rlb::Fail("--zookeeper_session_timeout must be > 0 and at most 3600 seconds");
  }
  std::optional<rlb::ZkAuth> zk_auth;
  if (!FLAGS_zookeeper_auth.empty()) {
    auto parsed = rlb::ParseZkAuth(FLAGS_zookeeper_auth);
    if (!parsed.ok()) return rlb::Fail(parsed.status().message());
    zk_auth = *parsed;
  }
  auto options = rlb::lb::OptionsFromFlags(/*variance_default=*/1.0);
  if (!options.ok()) return rlb::Fail(options.status().message());
  auto classifier = rlb::lb::Classifier::Create(options->classifier);
  if (!classifier.ok()) return rlb::Fail(classifier.status().message());
  if (rlb::lb::CheckOnly()) {
    rlb::Status checked = rlb::lb::CheckFiles(*options);
    if (!checked.ok()) return rlb::Fail(checked.message());
    std::printf("zkresumelb: the options are valid\n");
    return 0;
  }

  auto status = rlb::lb::RunLbProcesses("zkresumelb", *options, [&](const rlb::lb::LbOptions& o) {
    return RunLoadBalancer(o, zk_hosts, zk_auth, path, *classifier);
  });
  if (!status.ok()) return rlb::Fail(status.status().message());
  return *status;
}
