// Small writers the admin server's routes share: JSON members (kv), the
// error body, and Prometheus metric families. Header-only: each is a few
// lines, used by admin.cc, admin_api.cc and admin_metrics.cc.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json_writer.h"
#include "proxy/snapshot.h"

namespace hashgate::admin_format {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

inline MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

inline void add(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

inline void add_histogram(MetricFamily& f, const Histogram& h, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    m.histogram.bucket.push_back({cum, h.bounds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(m));
}

// A worker name as a label value: control characters (which a peer chooses)
// written as \xHH text, never raw bytes in the exposition.
inline std::string label_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

inline std::string error_json(std::string_view message) {
  std::string o = "{\"error\":";
  json_append_string(o, message);
  o += "}";
  return o;
}

inline void kv(std::string& o, const char* k, double v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_double(o, std::isfinite(v) ? v : 0);
}

inline void kv(std::string& o, const char* k, uint64_t v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_uint(o, v);
}

inline void kv(std::string& o, const char* k, std::string_view v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_string(o, v);
}

inline void kv(std::string& o, const char* k, bool v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += v ? ":true" : ":false";
}

inline void append_int_or_null(std::string& o, const char* k, int64_t v) {
  o += ",";
  json_append_string(o, k);
  o += ":";
  if (v < 0) {
    o += "null";
  } else {
    json_append_uint(o, uint64_t(v));
  }
}

}  // namespace hashgate::admin_format
