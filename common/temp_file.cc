// TempFile: mkostemp + unlink.
#include "common/temp_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rlb {

std::string DefaultTempDir() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

StatusOr<int> CreateUnlinkedTempFile(const std::string& dir, std::string_view prefix) {
  std::string path = dir + "/" + std::string(prefix) + "XXXXXX";
  int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError("cannot create a temp file in " + dir + ": " + std::strerror(errno));
  }
  ::unlink(path.c_str());
  return fd;
}

}  // namespace rlb
