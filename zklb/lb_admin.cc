// The LB's admin pages and version text.
#include "zklb/lb_admin.h"

#include <llhttp.h>
#include <rapidjson/rapidjson.h>
#include <uv.h>
#include <zookeeper/zookeeper_version.h>

#include "common/version.h"
#include "status/lb_metrics.h"
#include "zklb/status_page_html.h"

namespace rlb::lb {

AdminServer::Pages LbAdminPages(std::function<LbStatusSnapshot()> snapshot) {
  AdminServer::Pages pages;
  pages["/metrics"] = {kPrometheusContentType,
                       [snapshot] { return RenderLbMetrics(snapshot()); }, ""};
  pages["/status.json"] = {"application/json",
                           [snapshot] { return RenderLbStatusJson(snapshot()); }, ""};
  // The page runs only its own inline script and talks only to this listener.
  pages["/"] = {"text/html; charset=utf-8", [] { return std::string(kStatusPageHtml); },
                "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n"};
  return pages;
}

std::string LbVersionText(const std::string& program) {
  return program + " " + kVersion + "\n" +
         "libuv " + uv_version_string() + "\n" +
         "llhttp " + std::to_string(LLHTTP_VERSION_MAJOR) + "." +
         std::to_string(LLHTTP_VERSION_MINOR) + "." + std::to_string(LLHTTP_VERSION_PATCH) +
         "\n" + "ZooKeeper C client " + ZOO_VERSION + "\n" + "RapidJSON " +
         RAPIDJSON_VERSION_STRING + "\n";
}

}  // namespace rlb::lb
