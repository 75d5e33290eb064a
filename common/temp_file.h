// TempFile: unlinked temporary files, for data too big to keep in memory (the LB's response
// buffer, the worker's request-body spool). The file is unlinked as soon as it exists, so
// nothing is ever left on disk whatever happens to the process; it lives while its fd is open.
//
// Thread rules: any thread.
#ifndef RESUMELB_COMMON_TEMP_FILE_H_
#define RESUMELB_COMMON_TEMP_FILE_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace rlb {

// $TMPDIR when it is set and non-empty, else "/tmp".
std::string DefaultTempDir();

// Creates `dir`/`prefix`XXXXXX (mkostemp, O_CLOEXEC, mode 0600), unlinks it and returns the
// open read-write fd; the caller owns it (close() it). `prefix` names the user in `ls -l
// /proc/PID/fd` (e.g. "rlbob-"). IOError naming the directory and errno when it cannot.
StatusOr<int> CreateUnlinkedTempFile(const std::string& dir, std::string_view prefix);

}  // namespace rlb

#endif  // RESUMELB_COMMON_TEMP_FILE_H_
