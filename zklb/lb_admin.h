// The LB's admin pages and version text, shared by resumelb and zkresumelb:
//   /metrics      the Prometheus text format (status/lb_metrics.h)
//   /status.json  the status document, the same as the status socket's (status/lb_status.h)
//   /             the live status page (zklb/status_page.html, embedded in the binary)
//
// Thread rules: the pages render on the loop thread (the AdminServer's).
#ifndef RESUMELB_ZKLB_LB_ADMIN_H_
#define RESUMELB_ZKLB_LB_ADMIN_H_

#include <functional>
#include <string>

#include "status/admin_server.h"
#include "status/lb_status.h"

namespace rlb::lb {

// The admin pages; `snapshot` gives the LB's current status (with its ZooKeeper part).
AdminServer::Pages LbAdminPages(std::function<LbStatusSnapshot()> snapshot);

// What --version prints: the program, the project version and the libraries that matter
// (libuv, llhttp, the ZooKeeper client, RE2's ABI, RapidJSON).
std::string LbVersionText(const std::string& program);

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LB_ADMIN_H_
