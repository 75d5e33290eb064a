// common/temp_file.h: unlinked temp files and the default temp directory.
#include "common/temp_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace {

// A fresh empty directory, removed with its contents at scope exit.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rlbtest-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  bool Empty() const { return std::filesystem::is_empty(path); }
};

}  // namespace

TEST_CASE("CreateUnlinkedTempFile leaves nothing on disk", "[tempfile]") {
  ScratchDir dir;
  auto fd = rlb::CreateUnlinkedTempFile(dir.path, "rlbtest-");
  REQUIRE(fd.ok());
  CHECK(dir.Empty());
  CHECK((fcntl(*fd, F_GETFD) & FD_CLOEXEC) != 0);
  REQUIRE(::pwrite(*fd, "hello", 5, 0) == 5);
  char buf[5];
  REQUIRE(::pread(*fd, buf, 5, 0) == 5);
  CHECK(std::string(buf, 5) == "hello");
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", *fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  REQUIRE(n > 0);
  std::string where(target, static_cast<size_t>(n));
  CHECK(where.rfind(dir.path + "/rlbtest-", 0) == 0);  // named for ls -l /proc/PID/fd
  CHECK(where.find("(deleted)") != std::string::npos);
  ::close(*fd);

  auto missing = rlb::CreateUnlinkedTempFile(dir.path + "/no/such/dir", "x-");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == rlb::Status::Code::kIOError);
  CHECK(missing.status().message().find(dir.path + "/no/such/dir") != std::string::npos);
}

TEST_CASE("DefaultTempDir is $TMPDIR or /tmp", "[tempfile]") {
  const char* saved = std::getenv("TMPDIR");
  std::string old = saved ? saved : "";
  setenv("TMPDIR", "/var/tmp", 1);
  CHECK(rlb::DefaultTempDir() == "/var/tmp");
  setenv("TMPDIR", "", 1);
  CHECK(rlb::DefaultTempDir() == "/tmp");
  unsetenv("TMPDIR");
  CHECK(rlb::DefaultTempDir() == "/tmp");
  if (saved) setenv("TMPDIR", old.c_str(), 1);
}
