// AccessLog: stdio, line-buffered by an explicit flush so a crash loses no finished line.
#include "zklb/access_log.h"

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>

#include "common/json.h"
#include "status/lb_status.h"
#include "zklb/request_metrics.h"

namespace rlb::lb {
namespace {

// A client's bytes inside a quoted field: '"', '\' and control or non-ASCII bytes as \xHH
// (nginx's escaping), so a hostile header cannot forge or break a line. Empty: "-".
void AppendQuoted(std::string* out, std::string_view value) {
  out->push_back('"');
  if (value.empty()) out->push_back('-');
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out->append(hex);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

std::string LocalTime(double epoch, const char* format) {
  char when[64];
  time_t t = static_cast<time_t>(epoch);
  tm local;
  localtime_r(&t, &local);
  std::strftime(when, sizeof when, format, &local);
  return when;
}

}  // namespace

std::string FormatAccessLine(const RequestRecord& r) {
  std::string line(r.client_ip);
  line += " - - [" + LocalTime(r.start, "%d/%b/%Y:%H:%M:%S %z") + "] \"";
  if (r.has_request_line) {
    line.append(r.method).append(" ").append(r.url);
    line += " HTTP/1." + std::to_string(r.http_minor);
  } else {
    line += "-";
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "\" %d %" PRIu64 " %.6f ", r.status, r.body_bytes, r.duration);
  line += buf;
  line.append(r.worker);
  line += ' ';
  AppendQuoted(&line, r.host);
  line += ' ';
  AppendQuoted(&line, r.classified ? r.request_class : std::string_view());
  line += ' ';
  AppendQuoted(&line, r.user_agent);
  return line;
}

std::string FormatAccessJson(const RequestRecord& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  auto str = [&w](const char* key, std::string_view value) {
    w.Key(key);
    std::string valid = ValidUtf8(value);
    w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  };
  auto str_or_null = [&](const char* key, std::string_view value, bool known) {
    if (known) {
      str(key, value);
    } else {
      w.Key(key);
      w.Null();
    }
  };
  w.StartObject();
  str("time", LocalTime(r.start, "%Y-%m-%dT%H:%M:%S%z"));
  w.Key("start");
  w.Double(r.start);
  str("client", r.client_ip);
  str_or_null("method", r.method, r.has_request_line);
  str_or_null("url", r.url, r.has_request_line);
  str_or_null("protocol", "HTTP/1." + std::to_string(r.http_minor), r.has_request_line);
  w.Key("status");
  w.Int(r.status);
  w.Key("bytes");
  w.Uint64(r.body_bytes);
  w.Key("request_bytes");
  w.Uint64(r.request_body_bytes);
  w.Key("seconds");
  w.Double(r.duration);
  str_or_null("worker", r.worker, r.worker != "-");
  str_or_null("host", r.host, !r.host.empty());
  str_or_null("class", r.request_class, r.classified);
  str_or_null("user_agent", r.user_agent, !r.user_agent.empty());
  str_or_null("error", r.error, !r.error.empty());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

AccessLog::~AccessLog() {
  if (own_file_ && file_) std::fclose(file_);
}

Status AccessLog::Open(const std::string& path, Format format) {
  format_ = format;
  if (path.empty()) return Status::OK();
  if (path == "-") {
    file_ = stdout;
    return Status::OK();
  }
  file_ = std::fopen(path.c_str(), "ae");
  if (!file_) {
    return Status::InvalidArgument("cannot open access log " + path + ": " + std::strerror(errno) +
                                   (errno == ENOENT ? " (create its directory first)" : ""));
  }
  own_file_ = true;
  path_ = path;
  return Status::OK();
}

Status AccessLog::Reopen() {
  if (!own_file_) return Status::OK();
  FILE* f = std::fopen(path_.c_str(), "ae");
  if (!f) {
    return Status::IOError("cannot reopen access log " + path_ + ": " + std::strerror(errno));
  }
  std::fclose(file_);
  file_ = f;
  return Status::OK();
}

void AccessLog::Record(const RequestRecord& record) {
  if (metrics_) metrics_->Record(record);
  if (!file_) return;
  Write(format_ == Format::kJson ? FormatAccessJson(record) : FormatAccessLine(record));
}

void AccessLog::Write(const std::string& line) {
  if (!file_) return;
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace rlb::lb
