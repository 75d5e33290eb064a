// Logging set-up shared by the executables: glog to stderr, level from an -L style spec.
//
// Spec forms (as the original's -L): all digits -> Python numeric level (10 DEBUG, 20 INFO,
// 30 WARNING, 40 ERROR, 50 CRITICAL); a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL);
// anything else is refused. Thread rules: call once from main() before other threads start.
#ifndef RESUMELB_COMMON_LOGGING_SETUP_H_
#define RESUMELB_COMMON_LOGGING_SETUP_H_

#include <string_view>

#include "common/status.h"

namespace rlb {

// Initializes glog for `argv0` (logs to stderr). Call before ApplyLogLevel.
void InitLogging(const char* argv0);
// Applies a level spec; an empty spec keeps the default (INFO).
Status ApplyLogLevel(std::string_view spec);
// Prints "PROGRAM: error: MESSAGE" on stderr: the one line a bad flag or config gets.
void PrintError(std::string_view program, std::string_view message);

}  // namespace rlb

#endif  // RESUMELB_COMMON_LOGGING_SETUP_H_
