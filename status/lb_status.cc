// RenderLbStatusJson: the status document's keys, in their documented order.
#include "status/lb_status.h"

#include "common/json.h"

namespace rlb {
namespace {

void Number(JsonWriter& w, const std::optional<double>& d) {
  if (d) {
    w.Double(*d);
  } else {
    w.Null();
  }
}

void String(JsonWriter& w, const std::optional<std::string>& s) {
  if (s) {
    w.String(s->c_str());
  } else {
    w.Null();
  }
}

void Setting(JsonWriter& w, const char* name, const std::string& source, auto write_value) {
  w.Key(name);
  w.StartObject();
  w.Key("value");
  write_value();
  w.Key("source");
  w.String(source.c_str());
  w.EndObject();
}

void WriteZooKeeper(JsonWriter& w, const LbStatusSnapshot::ZooKeeper& zk,
                    const LbStatusSnapshot::Pool& pool) {
  w.Key("zookeeper");
  w.StartObject();
  w.Key("state");
  w.String(zk.state.c_str());
  w.Key("hosts");
  w.String(zk.hosts.c_str());
  w.Key("sessions");
  w.Uint64(zk.sessions);
  w.Key("path");
  w.String(zk.path.c_str());
  w.Key("workers_path");
  String(w, zk.workers_path);
  w.Key("worker_node_reads");
  w.Uint64(zk.worker_node_reads);
  w.Key("disabled");
  w.StartArray();
  for (const auto& name : zk.disabled) w.String(name.c_str());
  w.EndArray();
  w.EndObject();
  w.Key("settings");  // sorted by name
  w.StartObject();
  Setting(w, "backlog_history", zk.backlog_history_source,
          [&] { w.Int(pool.backlog_history); });
  Setting(w, "unskilled_score", zk.unskilled_score_source,
          [&] { w.Double(pool.unskilled_score); });
  Setting(w, "variance", zk.variance_source, [&] { w.Double(pool.variance); });
  if (!zk.rejected_settings.empty()) {  // after the settings: it is not one
    w.Key("rejected");
    w.StartObject();
    for (const auto& [key, reason] : zk.rejected_settings) {
      w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      w.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
    }
    w.EndObject();
  }
  w.EndObject();
}

void WriteClass(JsonWriter& w, const LbStatusSnapshot::Class& c, bool with_workers) {
  w.StartObject();
  w.Key("class");
  w.String(c.name.data(), static_cast<rapidjson::SizeType>(c.name.size()));
  w.Key("requests");
  w.Uint64(c.requests);
  w.Key("latency_sum");
  w.Double(c.latency.sum);
  if (with_workers) {
    w.Key("workers");
    w.StartArray();
    for (const auto& server : c.workers) {
      w.StartArray();
      w.String(server.worker.c_str());
      w.Double(server.score);
      w.EndArray();
    }
    w.EndArray();
  }
  w.EndObject();
}

// The keys added after the original's and the counters: who is running, since when, and
// what the requests were.
void WriteIdentityAndRequests(JsonWriter& w, const LbStatusSnapshot& st) {
  w.Key("version");
  w.String(st.version.c_str());
  w.Key("start_time");
  w.Double(st.start_time);
  w.Key("uptime");
  w.Double(st.uptime);
  w.Key("requests_by_status");
  w.StartObject();
  static const char* const kClassNames[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 1; i <= 5; ++i) {
    w.Key(kClassNames[i]);
    w.Uint64(st.requests.by_status_class[i]);
  }
  w.EndObject();
  w.Key("latency_seconds");
  w.StartObject();
  w.Key("count");
  w.Uint64(st.requests.latency.count);
  w.Key("sum");
  w.Double(st.requests.latency.sum);
  w.EndObject();
  w.Key("bytes");
  w.StartObject();
  w.Key("request_body");
  w.Uint64(st.requests.request_body_bytes);
  w.Key("response_body");
  w.Uint64(st.requests.response_body_bytes);
  w.EndObject();
  w.Key("classes");
  w.StartArray();
  for (const auto& c : st.requests.classes) WriteClass(w, c, /*with_workers=*/true);
  w.EndArray();
  w.Key("other_classes");
  WriteClass(w, st.requests.other, /*with_workers=*/false);
}

}  // namespace

std::string RenderLbStatusJson(const LbStatusSnapshot& st) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("backlog");
  w.Int(st.backlog);
  w.Key("mean_backlog");
  Number(w, st.mean_backlog);
  w.Key("workers");
  w.StartArray();
  for (const auto& wk : st.workers) {
    w.StartArray();
    w.String(wk.name.c_str());
    w.Int(wk.backlog);
    Number(w, wk.mean_backlog);
    Number(w, wk.oldest_start);
    w.EndArray();
  }
  w.EndArray();
  w.Key("workers_ex");
  w.StartArray();
  for (const auto& wk : st.workers) {
    w.StartArray();
    w.String(wk.name.c_str());
    w.Uint64(wk.queued_bytes);
    w.EndArray();
  }
  w.EndArray();
  w.Key("worker_details");
  w.StartArray();
  for (const auto& link : st.links) {
    w.StartObject();
    w.Key("name");
    w.String(link.name.c_str());
    w.Key("connected");
    w.Bool(link.connected);
    w.Key("in_pool");
    w.Bool(link.in_pool);
    w.Key("version");
    String(w, link.version);
    w.Key("resume_size");
    w.Uint64(link.resume_size);
    w.Key("requests");
    w.Uint64(link.requests);
    w.Key("in_flight");
    w.Uint64(link.in_flight);
    w.Key("last_error");
    String(w, link.last_error);
    w.Key("last_error_time");
    Number(w, link.last_error_time);
    w.Key("state");
    w.String(link.state.c_str());
    w.Key("failures");
    w.Uint64(link.failures);
    w.Key("disabled");
    w.Bool(link.disabled);
    w.EndObject();
  }
  w.EndArray();
  w.Key("pool");
  w.StartObject();
  w.Key("kind");
  w.String(st.pool.kind.c_str());
  w.Key("single_version");
  w.Bool(st.pool.single_version);
  w.Key("active_version");
  String(w, st.pool.active_version);
  w.Key("variance");
  w.Double(st.pool.variance);
  w.Key("backlog_history");
  w.Int(st.pool.backlog_history);
  w.Key("unskilled_score");
  w.Double(st.pool.unskilled_score);
  if (!st.pool.placement.empty()) {
    w.Key("placement");
    w.String(st.pool.placement.c_str());
  }
  w.EndObject();
  w.Key("totals");
  w.StartObject();
  w.Key("requests");
  w.Uint64(st.totals.requests);
  w.Key("responses");
  w.Uint64(st.totals.responses);
  w.Key("retries");
  w.Uint64(st.totals.retries);
  w.Key("502");
  w.Uint64(st.totals.bad_gateway);
  w.Key("503");
  w.Uint64(st.totals.unavailable);
  w.Key("client_errors");
  w.Uint64(st.totals.client_errors);
  w.Key("truncated");
  w.Uint64(st.totals.truncated);
  w.Key("client_aborts");
  w.Uint64(st.totals.client_aborts);
  w.Key("retries_refused");
  w.Uint64(st.totals.retries_refused);
  w.Key("queries_of_death");
  w.Uint64(st.totals.queries_of_death);
  w.Key("invalid_responses");
  w.Uint64(st.totals.invalid_responses);
  w.Key("connections_accepted");
  w.Uint64(st.totals.connections_accepted);
  w.Key("connections_open");
  w.Uint64(st.totals.connections_open);
  w.EndObject();
  w.Key("draining");
  w.Bool(st.draining);
  w.Key("loop_lag_ms");
  w.StartObject();
  w.Key("last");
  w.Double(st.loop_lag.last);
  w.Key("recent_max");
  w.Double(st.loop_lag.recent_max);
  w.Key("max");
  w.Double(st.loop_lag.max);
  w.EndObject();
  w.Key("response_buffers");
  w.StartObject();
  w.Key("memory");
  w.Uint64(st.response_buffers.memory);
  w.Key("disk");
  w.Uint64(st.response_buffers.disk);
  w.EndObject();
  if (st.file_descriptors) {
    const auto& fd = *st.file_descriptors;
    w.Key("file_descriptors");
    w.StartObject();
    for (const auto& [key, value] : {std::pair<const char*, uint64_t>{"limit", fd.limit},
                                     {"base", fd.base},
                                     {"client_reserve", fd.client_reserve},
                                     {"worker_capacity", fd.link_capacity},
                                     {"worker_connections", fd.links_open},
                                     {"workers_waiting", fd.workers_waiting},
                                     {"worker_shortages", fd.link_shortages},
                                     {"accept_pauses", fd.accept_pauses}}) {
      w.Key(key);
      w.Uint64(value);
    }
    w.EndObject();
  }
  WriteIdentityAndRequests(w, st);
  if (st.zookeeper) WriteZooKeeper(w, *st.zookeeper, st.pool);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len > 1) {  // no overlong forms, surrogates or values past U+10FFFF
      uint32_t cp = c & (0x7F >> len);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (text[i + k] & 0x3F);
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace rlb
