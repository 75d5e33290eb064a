// FdBudget: the arithmetic of the open-file limit's share-out, and reading it off the process.
#include "zklb/fd_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <limits>

namespace rlb::lb {
namespace {

uint64_t Subtract(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

FdBudget::FdBudget(uint64_t limit, uint64_t base, int max_connections)
    : limit_(limit), base_(base), max_connections_(max_connections) {
  client_reserve_ = max_connections > 0 ? static_cast<uint64_t>(max_connections) : limit / 4;
  link_capacity_ = Subtract(limit, base + kMarginFds + client_reserve_);
}

FdBudget FdBudget::ForThisProcess(int max_connections) {
  uint64_t limit = std::numeric_limits<uint32_t>::max();
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  uint64_t open = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++open;
    }
    closedir(dir);
    if (open > 0) --open;  // the directory's own descriptor
  }
  return FdBudget(limit, open, max_connections);
}

bool FdBudget::TryAcquireLink() {
  if (links_open_ >= link_capacity_) return false;
  ++links_open_;
  return true;
}

void FdBudget::ReleaseLink() {
  if (links_open_ > 0) --links_open_;
}

bool FdBudget::ClientFits(size_t connections_open) const {
  return base_ + kMarginFds + links_open_ + connections_open < limit_;
}

uint64_t FdBudget::Needed(size_t workers) const {
  uint64_t fixed = base_ + kMarginFds + workers;
  if (max_connections_ > 0) return fixed + static_cast<uint64_t>(max_connections_);
  return fixed + (fixed + 2) / 3;  // the client reserve is a quarter of the limit
}

}  // namespace rlb::lb
