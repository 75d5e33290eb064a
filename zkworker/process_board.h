// ProcessBoard: the shared-memory page through which one supervised worker process tells
// its master (zkworker --processes, zkworker/supervisor.h) how it is doing: whether it
// listens (and, in ZooKeeper mode, has registered), on which address, how many requests it
// has served, and which requests are running since when (for --harakiri).
//
// The master creates the page (a memfd), the worker maps the same file: after exec the
// descriptor number comes with --supervisor_fd; a --preload child inherits the mapping.
// Nothing on the page is trusted for more than reporting: a worker that scribbles on it
// can at worst be recycled or killed early, never corrupt the master.
//
// Thread rules: the worker side (Set*, RequestStarted/RequestFinished) is any thread; the
// master side (the readers) is the master's loop thread. Every field is an atomic, except
// a running request's description, which the master re-validates after copying it.
#ifndef RESUMELB_ZKWORKER_PROCESS_BOARD_H_
#define RESUMELB_ZKWORKER_PROCESS_BOARD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rlb::worker {

// Milliseconds on CLOCK_MONOTONIC, which every process of the machine shares.
int64_t MonotonicMs();

class ProcessBoard {
 public:
  // Master: a new zeroed page with one request slot per application thread.
  // REQUIRES: slots >= 1.
  static StatusOr<std::unique_ptr<ProcessBoard>> Create(int slots);
  // Worker: maps the page behind `fd` (which it keeps open).
  static StatusOr<std::unique_ptr<ProcessBoard>> Attach(int fd);
  ~ProcessBoard();
  ProcessBoard(const ProcessBoard&) = delete;
  ProcessBoard& operator=(const ProcessBoard&) = delete;

  // The page's file descriptor (close-on-exec in the master; the launcher clears that in
  // the child it execs).
  int fd() const { return fd_; }

  // --- worker side (any thread)
  // The worker listens on `address` (HOST:PORT) and handles its signals.
  void SetListening(std::string_view address);
  // ZooKeeper mode: the worker's address is registered.
  void SetRegistered();
  // An application thread starts running a request; returns its slot for
  // RequestFinished(). `what` is "METHOD HOST PATH" (cut to fit).
  int RequestStarted(std::string_view what);
  // The request is done (counted in requests()).
  void RequestFinished(int slot);

  // --- master side
  bool listening() const;
  bool registered() const;
  std::string address() const;
  uint64_t requests() const;
  // The request that has been running longest: its description and its age at `now_ms`.
  struct Running {
    std::string what;
    double seconds = 0;
  };
  std::optional<Running> Longest(int64_t now_ms) const;
  // Requests running now.
  int running() const;

 private:
  struct Page;
  ProcessBoard(int fd, Page* page, size_t size) : fd_(fd), page_(page), size_(size) {}

  int fd_;
  Page* page_;
  size_t size_;
  std::atomic<uint32_t> next_slot_{0};
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_PROCESS_BOARD_H_
