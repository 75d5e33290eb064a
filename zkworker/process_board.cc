// ProcessBoard: the page layout and its readers and writers.
#include "zkworker/process_board.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rlb::worker {
namespace {

constexpr uint32_t kMagic = 0x726c6231;  // "rlb1"
constexpr size_t kWhatBytes = 240;
constexpr size_t kAddressBytes = 128;
constexpr uint32_t kListening = 1;
constexpr uint32_t kRegistered = 2;

// One application thread's request. started_ms is 0 while the thread is idle; `what` is
// written before started_ms is published (release) and read after it (acquire).
struct Slot {
  std::atomic<int64_t> started_ms;
  char what[kWhatBytes];
};

thread_local int t_slot = -1;

}  // namespace

struct ProcessBoard::Page {
  std::atomic<uint32_t> magic;
  std::atomic<uint32_t> state;  // kListening | kRegistered
  std::atomic<uint64_t> requests;
  std::atomic<uint32_t> slot_count;
  std::atomic<uint32_t> address_size;
  char address[kAddressBytes];
  Slot slots[1];  // slot_count of them

  static size_t SizeFor(int slots) {
    return sizeof(Page) + sizeof(Slot) * (static_cast<size_t>(slots) - 1);
  }
};

static_assert(std::atomic<int64_t>::is_always_lock_free, "the page is shared by processes");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the page is shared by processes");

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

StatusOr<std::unique_ptr<ProcessBoard>> ProcessBoard::Create(int slots) {
  slots = std::max(slots, 1);
  int fd = memfd_create("zkworker-board", MFD_CLOEXEC);
  if (fd < 0) return Status::IOError(std::string("memfd_create: ") + strerror(errno));
  size_t size = Page::SizeFor(slots);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    close(fd);
    return Status::IOError(std::string("ftruncate: ") + strerror(e));
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return Status::IOError(std::string("mmap: ") + strerror(e));
  }
  auto* page = static_cast<Page*>(p);  // zeroed by ftruncate
  page->slot_count.store(static_cast<uint32_t>(slots));
  page->magic.store(kMagic);
  return std::unique_ptr<ProcessBoard>(new ProcessBoard(fd, page, size));
}

StatusOr<std::unique_ptr<ProcessBoard>> ProcessBoard::Attach(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < Page::SizeFor(1)) {
    return Status::InvalidArgument("--supervisor_fd " + std::to_string(fd) +
                                   " is not a process board");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(std::string("mmap: ") + strerror(errno));
  auto* page = static_cast<Page*>(p);
  if (page->magic.load() != kMagic ||
      Page::SizeFor(static_cast<int>(page->slot_count.load())) > size) {
    munmap(p, size);
    return Status::InvalidArgument("--supervisor_fd " + std::to_string(fd) +
                                   " is not a process board");
  }
  return std::unique_ptr<ProcessBoard>(new ProcessBoard(fd, page, size));
}

ProcessBoard::~ProcessBoard() {
  munmap(page_, size_);
  close(fd_);
}

void ProcessBoard::SetListening(std::string_view address) {
  size_t n = std::min(address.size(), kAddressBytes);
  memcpy(page_->address, address.data(), n);
  page_->address_size.store(static_cast<uint32_t>(n));
  page_->state.fetch_or(kListening);
}

void ProcessBoard::SetRegistered() { page_->state.fetch_or(kRegistered); }

int ProcessBoard::RequestStarted(std::string_view what) {
  // Each application thread keeps its own slot; a thread beyond the slot count shares one
  // (only the reporting of its requests is then approximate).
  if (t_slot < 0) t_slot = static_cast<int>(next_slot_.fetch_add(1) % page_->slot_count.load());
  Slot& slot = page_->slots[t_slot];
  size_t n = std::min(what.size(), kWhatBytes - 1);
  memcpy(slot.what, what.data(), n);
  slot.what[n] = '\0';
  slot.started_ms.store(MonotonicMs(), std::memory_order_release);
  return t_slot;
}

void ProcessBoard::RequestFinished(int slot) {
  page_->slots[slot].started_ms.store(0, std::memory_order_release);
  page_->requests.fetch_add(1, std::memory_order_relaxed);
}

bool ProcessBoard::listening() const { return page_->state.load() & kListening; }
bool ProcessBoard::registered() const { return page_->state.load() & kRegistered; }

std::string ProcessBoard::address() const {
  if (!listening()) return "";
  size_t n = std::min<size_t>(page_->address_size.load(), kAddressBytes);
  return std::string(page_->address, n);
}

uint64_t ProcessBoard::requests() const {
  return page_->requests.load(std::memory_order_relaxed);
}

std::optional<ProcessBoard::Running> ProcessBoard::Longest(int64_t now_ms) const {
  std::optional<Running> out;
  uint32_t count = page_->slot_count.load();
  for (uint32_t i = 0; i < count; ++i) {
    const Slot& slot = page_->slots[i];
    int64_t started = slot.started_ms.load(std::memory_order_acquire);
    if (started == 0) continue;
    double seconds = static_cast<double>(now_ms - started) / 1000.0;
    if (out && out->seconds >= seconds) continue;
    char what[kWhatBytes];
    memcpy(what, slot.what, kWhatBytes);
    what[kWhatBytes - 1] = '\0';
    // The thread may have moved on while we copied: the text is only kept when the
    // request is still the same one.
    if (slot.started_ms.load(std::memory_order_acquire) != started) continue;
    out = Running{what, seconds};
  }
  return out;
}

int ProcessBoard::running() const {
  int n = 0;
  uint32_t count = page_->slot_count.load();
  for (uint32_t i = 0; i < count; ++i) {
    if (page_->slots[i].started_ms.load(std::memory_order_relaxed) != 0) ++n;
  }
  return n;
}

}  // namespace rlb::worker
