// PrometheusText: the text format's syntax (families, samples, label escaping, numbers).
#include "status/prometheus_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "status/lb_status.h"  // ValidUtf8

namespace rlb {
namespace {

// A label value: valid UTF-8 with '\', '"' and newlines escaped.
std::string LabelValue(std::string_view raw) {
  std::string valid = ValidUtf8(raw);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

const std::vector<double>& DurationBucketBounds() {
  static const std::vector<double> bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,     2.5,  5,     10,   30,  60};
  return bounds;
}

size_t BucketIndex(const std::vector<double>& bounds, double value) {
  return std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
}

void PrometheusText::Family(const char* name, const char* type, const char* help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::Sample(std::string_view name, Labels labels, double value,
                            std::string_view extra) {
  out_ += name;
  if (labels.size() > 0 || !extra.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [key, label_value] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += key;
      out_ += "=\"";
      out_ += LabelValue(label_value);
      out_ += '"';
    }
    if (!extra.empty()) {
      if (!first) out_ += ',';
      out_ += extra;
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += Number(value);
  out_ += '\n';
}

void PrometheusText::Single(const char* name, const char* type, const char* help,
                            double value) {
  Family(name, type, help);
  Sample(name, {}, value);
}

void PrometheusText::Histogram(const std::string& name, Labels labels,
                               const std::vector<double>& bounds,
                               const std::vector<uint64_t>& counts, double sum,
                               uint64_t count) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    std::string le = "le=\"" + (i < bounds.size() ? Number(bounds[i]) : "+Inf") + "\"";
    Sample(name + "_bucket", labels, static_cast<double>(cumulative), le);
  }
  Sample(name + "_sum", labels, sum);
  Sample(name + "_count", labels, static_cast<double>(count));
}

}  // namespace rlb
