// FdBudget: how the load balancer shares its open-file limit (RLIMIT_NOFILE) between worker
// links and client connections, so that running short is visible and never silent.
//
// Every worker link and every client connection holds a descriptor. Unchecked, links to
// many workers can take them all: the kernel then refuses the next accept() (libuv
// accepts and closes such connections to keep its loop from spinning, so clients are
// reset without a word) and the status socket cannot answer. So:
//   * worker links may hold at most link_capacity() sockets: the limit less the
//     descriptors open at start (`base`), a margin for everything else (kMarginFds:
//     ZooKeeper, status and admin clients, response buffer files, the access log's
//     reopening) and a reserve left to client connections (--max_connections when set,
//     else a quarter of the limit). A link that finds no room waits and retries, shown in
//     the status document, instead of taking a client's descriptor;
//   * client connections are accepted while ClientFits(): past it the LB stops accepting
//     (the connection waits in the listen backlog, as past --max_connections) until a
//     connection or link closes, as nginx and HAProxy pause accepting at their limit.
//
// Thread rules: loop thread only (a plain counter the loop's objects share).
#ifndef RESUMELB_ZKLB_FD_BUDGET_H_
#define RESUMELB_ZKLB_FD_BUDGET_H_

#include <cstddef>
#include <cstdint>

namespace rlb::lb {

class FdBudget {
 public:
  // Descriptors kept for what is neither a link nor a client connection.
  static constexpr uint64_t kMarginFds = 32;

  // `limit`: the soft open-file limit; `base`: descriptors open before any link or client;
  // `max_connections`: the LB's --max_connections (0: no limit).
  FdBudget(uint64_t limit, uint64_t base, int max_connections);
  // The process's soft RLIMIT_NOFILE (RLIM_INFINITY as a very large number) and the
  // descriptors it has open now (/proc/self/fd).
  static FdBudget ForThisProcess(int max_connections);

  uint64_t limit() const { return limit_; }
  uint64_t base() const { return base_; }
  // Descriptors worker links leave to client connections.
  uint64_t client_reserve() const { return client_reserve_; }
  // How many worker links may be connected (or connecting) at once.
  uint64_t link_capacity() const { return link_capacity_; }
  uint64_t links_open() const { return links_open_; }

  // A link about to open a socket takes one slot; false when link_capacity() are taken.
  // Every true is matched by one ReleaseLink().
  bool TryAcquireLink();
  void ReleaseLink();

  // Whether one more client connection fits beside `connections_open` client connections
  // and the links open now.
  bool ClientFits(size_t connections_open) const;

  // The limit that `workers` links and the client connections need: base, margin, the
  // links, and --max_connections (or, without it, a quarter of the result for clients).
  uint64_t Needed(size_t workers) const;

 private:
  uint64_t limit_;
  uint64_t base_;
  int max_connections_;
  uint64_t client_reserve_;
  uint64_t link_capacity_;
  uint64_t links_open_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_FD_BUDGET_H_
