// Classifier: spec parsing (including the original's Python-call spelling) and RE2 search.
#include "zklb/classifier.h"

#include <re2/re2.h>

#include <vector>

#include "common/text.h"

namespace rlb::lb {
namespace {

// Parses one Python string literal (optionally r-prefixed, single or double quoted) at the
// start of `s`; advances `s` past it. Only the escapes \\ \" \' are interpreted in plain
// strings; raw strings keep backslashes, which is what regexes need.
bool ParsePyString(std::string_view* s, std::string* out) {
  std::string_view t = *s;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  bool raw = false;
  if (!t.empty() && (t.front() == 'r' || t.front() == 'R')) {
    raw = true;
    t.remove_prefix(1);
  }
  if (t.empty() || (t.front() != '"' && t.front() != '\'')) return false;
  char quote = t.front();
  t.remove_prefix(1);
  out->clear();
  while (!t.empty() && t.front() != quote) {
    if (t.front() == '\\' && t.size() > 1) {
      if (raw) {
        out->push_back('\\');
        out->push_back(t[1]);
      } else if (t[1] == '\\' || t[1] == '"' || t[1] == '\'') {
        out->push_back(t[1]);
      } else {
        out->push_back('\\');
        out->push_back(t[1]);
      }
      t.remove_prefix(2);
      continue;
    }
    out->push_back(t.front());
    t.remove_prefix(1);
  }
  if (t.empty()) return false;
  t.remove_prefix(1);
  *s = t;
  return true;
}

constexpr std::string_view kBlanks = " \t";  // what a spec is trimmed of

}  // namespace

std::string HostClass(std::string_view host) {
  // The port: after the closing bracket of an IP literal, else after the first ':'.
  const bool literal = !host.empty() && host.front() == '[';
  size_t end = literal ? host.find(']') : host.find(':');
  if (literal && end != std::string_view::npos) ++end;
  host = host.substr(0, end);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // the root label
  std::string cls;
  cls.reserve(host.size());
  for (char c : host) cls.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  if (cls.compare(0, 4, "www.") == 0) cls.erase(0, 4);
  return cls;
}

Classifier::~Classifier() = default;

StatusOr<std::shared_ptr<Classifier>> Classifier::Create(std::string_view spec) {
  auto c = std::shared_ptr<Classifier>(new Classifier());
  spec = Trim(spec, kBlanks);
  c->description_ = std::string(spec);
  if (spec.empty() || spec == "host" || spec == "zc.resumelb.lb:host_classifier") {
    c->kind_ = Kind::kHost;
    return c;
  }
  if (spec == "none" || spec == "classless" || spec == "zc.resumelb.classlesspool:classifier") {
    c->kind_ = Kind::kNone;
    return c;
  }
  std::string key, pattern;
  constexpr std::string_view kPyPrefix = "zc.resumelb.lb:re_classifier(";
  if (spec.substr(0, 3) == "re:") {
    std::string_view rest = spec.substr(3);
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::InvalidArgument("classifier '" + std::string(spec) +
                                     "' is not of the form re:KEY:REGEX");
    }
    key = std::string(rest.substr(0, colon));
    pattern = std::string(rest.substr(colon + 1));
  } else if (spec.substr(0, kPyPrefix.size()) == kPyPrefix) {
    std::string_view rest = spec.substr(kPyPrefix.size());
    bool ok = ParsePyString(&rest, &key);
    rest = Trim(rest, kBlanks);
    ok = ok && !rest.empty() && rest.front() == ',';
    if (ok) rest.remove_prefix(1);
    ok = ok && ParsePyString(&rest, &pattern);
    rest = Trim(rest, kBlanks);
    if (!ok || rest != ")") {
      return Status::InvalidArgument("classifier '" + std::string(spec) +
                                     "' is not of the form "
                                     "zc.resumelb.lb:re_classifier(\"KEY\", r\"REGEX\")");
    }
  } else {
    return Status::InvalidArgument(
        "unknown request classifier '" + std::string(spec) +
        "' (use host, none, re:KEY:REGEX or zc.resumelb.lb:re_classifier(\"KEY\", r\"REGEX\"))");
  }
  // Python's (?P<name>...) is RE2's syntax too. Latin-1: environ values are bytes.
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    return Status::InvalidArgument("invalid classifier regex '" + pattern + "': " + re->error());
  }
  const auto& groups = re->NamedCapturingGroups();
  auto it = groups.find("class");
  if (it == groups.end()) {
    return Status::InvalidArgument("classifier regex '" + pattern +
                                   "' has no (?P<class>...) group");
  }
  c->kind_ = Kind::kRegex;
  c->key_ = key;
  c->class_group_ = it->second;
  c->regex_ = std::move(re);
  return c;
}

std::string Classifier::Classify(const proto::Pairs& environ) const {
  std::string cls = ClassifyUnbounded(environ);
  // A REQUEST's class is at most kMaxClassBytes on the wire: a longer one (a 5 KB Host
  // header) would make the worker drop the whole connection as malformed, failing every
  // request in flight on it (caught by fuzz_http_request). The prefix is as good a class.
  if (cls.size() > proto::kMaxClassBytes) cls.resize(proto::kMaxClassBytes);
  return cls;
}

std::string Classifier::ClassifyUnbounded(const proto::Pairs& environ) const {
  switch (kind_) {
    case Kind::kNone:
      return "";
    case Kind::kHost: {
      for (const auto& [k, v] : environ) {
        if (k == "HTTP_HOST") return HostClass(v);
      }
      return "";
    }
    case Kind::kRegex: {
      for (const auto& [k, v] : environ) {
        if (k != key_) continue;
        std::vector<re2::StringPiece> groups(class_group_ + 1);
        if (!regex_->Match(v, 0, v.size(), RE2::UNANCHORED, groups.data(),
                           static_cast<int>(groups.size()))) {
          return "";
        }
        const auto& g = groups[class_group_];
        return g.data() ? std::string(g.data(), g.size()) : "";
      }
      return "";
    }
  }
  return "";
}

}  // namespace rlb::lb
