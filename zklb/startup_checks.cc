// Start-up helpers: --version, --check, the status socket and the admin listener.
#include "zklb/startup_checks.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include <glog/logging.h>

#include "zklb/lb_admin.h"
#include "zklb/lb_command_line.h"

namespace rlb::lb {
namespace {

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status WritableDirectory(const std::string& dir, const std::string& what) {
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::InvalidArgument(what + ": directory " + dir + ": " + std::strerror(errno) +
                                   (errno == ENOENT ? " (create it first)" : ""));
  }
  return Status::OK();
}

}  // namespace

bool WantsVersion(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--version") return true;
  }
  return false;
}

Status CheckFiles(const LbOptions& o) {
  if (!o.disconnect_message_file.empty() &&
      access(o.disconnect_message_file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("cannot read disconnect message file " +
                                   o.disconnect_message_file + ": " + std::strerror(errno));
  }
  if (!o.access_log.empty() && o.access_log != "-") {
    if (access(o.access_log.c_str(), F_OK) == 0) {
      if (access(o.access_log.c_str(), W_OK) != 0) {
        return Status::InvalidArgument("cannot write access log " + o.access_log + ": " +
                                       std::strerror(errno));
      }
    } else {
      Status s = WritableDirectory(DirectoryOf(o.access_log), "access log " + o.access_log);
      if (!s.ok()) return s;
    }
  }
  if (!o.status_socket.empty()) {
    Status s = WritableDirectory(DirectoryOf(o.status_socket),
                                 "status socket " + o.status_socket);
    if (!s.ok()) return s;
  }
  return WritableDirectory(o.buffer_dir, "--buffer_dir");
}

StatusOr<std::unique_ptr<StatusServer>> StartStatusSocket(uv_loop_t* loop,
                                                          const LbOptions& options,
                                                          StatusServer::DocumentFn document) {
  std::optional<gid_t> group;
  if (!options.status_socket_group.empty()) {
    auto gid = LookUpGroup(options.status_socket_group);
    if (!gid.ok()) return gid.status();
    group = *gid;
  }
  auto server = std::make_unique<StatusServer>(loop, options.status_socket, std::move(document));
  Status s = server->Start(options.status_socket_mode, group);
  if (!s.ok()) return s;
  return server;
}

StatusOr<std::unique_ptr<AdminServer>> StartAdminServer(
    uv_loop_t* loop, const LbOptions& options, std::function<LbStatusSnapshot()> snapshot) {
  auto server = std::make_unique<AdminServer>(loop, *options.admin_address,
                                              LbAdminPages(std::move(snapshot)));
  Status s = server->Start();
  if (!s.ok()) return s;
  LOG(INFO) << "admin listener on " << server->address().ToString()
            << " (/metrics, /status.json, /)";
  return server;
}

}  // namespace rlb::lb
