// Classifier: turns a request's environ into its request class.
//
// Built from a spec string at start-up (an invalid spec is a start-up error):
//   host | zc.resumelb.lb:host_classifier       the Host header, lower-cased, without its
//                                                port, a trailing dot or a leading "www."
//                                                (WWW.H.EXAMPLE.:8080 and h.example are
//                                                one class)
//   none | classless | zc.resumelb.classlesspool:classifier   always ""
//   re:KEY:REGEX                                 RE2 search over environ[KEY]; the class is
//                                                the named group `class`
//   zc.resumelb.lb:re_classifier("KEY", r"REGEX") the original's spelling of the same
// RE2 runs in linear time, so hostile input cannot cause catastrophic backtracking.
// Thread rules: immutable after Create(); Classify() is safe from any thread.
#ifndef RESUMELB_ZKLB_CLASSIFIER_H_
#define RESUMELB_ZKLB_CLASSIFIER_H_

#include <memory>
#include <string>
#include <string_view>

#include "common/frame_codec.h"
#include "common/status.h"

namespace re2 {
class RE2;
}

namespace rlb::lb {

// The host classifier's class of a Host value (see above).
std::string HostClass(std::string_view host);

class Classifier {
 public:
  static StatusOr<std::shared_ptr<Classifier>> Create(std::string_view spec);
  ~Classifier();
  // The class, at most proto::kMaxClassBytes long (longer ones are cut to that length).
  std::string Classify(const proto::Pairs& environ) const;
  const std::string& description() const { return description_; }

 private:
  enum class Kind { kHost, kNone, kRegex };
  Classifier() = default;
  std::string ClassifyUnbounded(const proto::Pairs& environ) const;
  Kind kind_ = Kind::kHost;
  std::string key_;
  std::unique_ptr<re2::RE2> regex_;
  int class_group_ = 0;
  std::string description_;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_CLASSIFIER_H_
