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
  if (st.zookeeper) WriteZooKeeper(w, *st.zookeeper, st.pool);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace rlb
