// Start-up helpers shared by resumelb and zkresumelb: --version, --check's checks of the
// files and directories the options name, and starting the status socket and the admin
// listener from the options.
//
// Thread rules: main thread, before the loop runs.
#ifndef RESUMELB_ZKLB_STARTUP_CHECKS_H_
#define RESUMELB_ZKLB_STARTUP_CHECKS_H_

#include <uv.h>

#include <functional>
#include <memory>

#include "common/status.h"
#include "status/admin_server.h"
#include "status/lb_status.h"
#include "status/status_server.h"
#include "zklb/lb_options.h"

namespace rlb::lb {

// True when an argument is exactly "--version" (before gflags, whose own --version
// prints only the project version).
bool WantsVersion(int argc, char** argv);

// What --check verifies beyond the flags' own validation, without binding or creating
// anything: the -e file is readable; the directories of -l and -s exist and are writable,
// as is --buffer_dir. InvalidArgument naming the first problem.
Status CheckFiles(const LbOptions& options);

// Serves the status document on options.status_socket with its mode and group.
// REQUIRES: !options.status_socket.empty().
StatusOr<std::unique_ptr<StatusServer>> StartStatusSocket(uv_loop_t* loop,
                                                          const LbOptions& options,
                                                          StatusServer::DocumentFn document);

// Starts the admin listener at options.admin_address (REQUIRES: set), logging its address.
StatusOr<std::unique_ptr<AdminServer>> StartAdminServer(
    uv_loop_t* loop, const LbOptions& options, std::function<LbStatusSnapshot()> snapshot);

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_STARTUP_CHECKS_H_
