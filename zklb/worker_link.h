// WorkerLink: the LB's one multiplexed connection to one worker address.
//
// It connects (with a timeout), exchanges HELLOs, and joins the pool when the first RESUME
// arrives (each later RESUME replaces the résumé); with a link secret (LbOptions) only a
// worker that proved it gets that far (common/link_auth.h). Requests are multiplexed by request
// number; their frames are batched into one write buffer. KEEPALIVEs go out on an idle
// connection and the worker must answer: a worker silent for worker_timeout is dropped, so
// a hung (SIGSTOPped) or vanished worker is noticed in seconds. After a drop the link
// leaves the pool at once, tells every request on it (LinkRequest::OnLinkLost, with the
// typed cause), and reconnects: immediately after an established connection, then with a
// doubling back-off.
//
// The link reports to its owner through WorkerLink::Observer and knows nothing else of the
// load balancer. The owner may free an unwanted, disconnected link at any time outside the
// link's own calls (its handles free themselves, see common/uv_handle.h).
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_WORKER_LINK_H_
#define RESUMELB_ZKLB_WORKER_LINK_H_

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/frame_codec.h"
#include "common/link_auth.h"
#include "common/net_address.h"
#include "common/stream_writer.h"
#include "common/uv_handle.h"
#include "zklb/fd_budget.h"
#include "zklb/lb_options.h"
#include "zklb/link_failure.h"
#include "zklb/link_request.h"
#include "zklb/pool.h"

namespace rlb::lb {

class WorkerLink;

class WorkerLink : public RequestChannel, private StreamWriter::Listener {
 public:
  // What the link tells its owner. Called from the link's own callbacks: the observer must
  // not free the link inside these calls (use a DeferredDeleter).
  class Observer {
   public:
    virtual ~Observer() = default;
    // The link joined the pool (first RESUME of a connection) or sent a new résumé.
    virtual void OnLinkResume(WorkerLink* link, Resume resume) = 0;
    // The link left the pool (GOAWAY or a failure). pool_worker() is still set.
    virtual void OnLinkRemoved(WorkerLink* link) = 0;
    // The link lost its connection and, being unwanted, will not reconnect.
    virtual void OnLinkIdle(WorkerLink* link) = 0;
    // A connection attempt found no file descriptor (its FdBudget had no room, or the
    // kernel said EMFILE/ENFILE); the link retries with its back-off. The link logs this
    // only at VLOG(1): the owner reports the shortage for all links at once.
    virtual void OnLinkFdShortage(WorkerLink* link) = 0;
  };

  // REQUIRES: `observer` and `options` outlive the link.
  // `batcher`, if given, gathers the link's frames per loop turn (REQUIRES: outlives it).
  WorkerLink(Observer* observer, const LbOptions* options, uv_loop_t* loop, std::string name,
             HostPort address, std::optional<std::string> version,
             WriteBatcher* batcher = nullptr);
  ~WorkerLink() override;
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  // Sockets count against `budget` (REQUIRES: outlives the link), if given, before Start().
  void set_fd_budget(FdBudget* budget) { fd_budget_ = budget; }
  void Start();
  // Whether the address is still configured. An unwanted link keeps a live connection
  // (ZooKeeper flapping must not disturb it) but does not reconnect.
  void SetWanted(bool wanted, std::optional<std::string> version);
  bool wanted() const { return wanted_; }
  // Closes everything (LB shutdown or the link is dropped); requests on it get OnLinkLost.
  void Stop();

  // RequestChannel (see zklb/link_request.h).
  uint32_t SendRequest(LinkRequest* req, std::string_view request_class,
                       const proto::Pairs& environ) override;
  void SendBody(uint32_t rno, std::string_view data) override;
  void SendEnd(uint32_t rno) override;
  void Detach(uint32_t rno, bool cancel) override;
  bool congested() const override;
  void WaitWritable(LinkRequest* req) override;
  void PauseReads(LinkRequest* req) override;
  void ResumeReads(LinkRequest* req) override;

  const std::string& name() const { return name_; }
  // The last connection failure (empty if none since the last success), and when (epoch s).
  const std::string& last_error() const { return last_error_; }
  double last_error_time() const { return last_error_time_; }
  const std::optional<std::string>& version() const { return version_; }
  const PoolWorkerPtr& pool_worker() const { return pool_worker_; }
  bool connected() const { return state_ == State::kReady || state_ == State::kDraining; }
  // Connected, résumé received, and not draining (GOAWAY): the pool may have it.
  bool ready() const { return state_ == State::kReady; }
  size_t queued_bytes() const { return writer_.queued_bytes(); }
  size_t in_flight() const { return requests_.size(); }
  std::optional<double> oldest_start() const;  // epoch seconds of the oldest request
  uint64_t requests_sent() const { return requests_sent_; }
  size_t resume_size() const { return resume_size_; }
  // Failed connection attempts and lost connections, since start.
  uint64_t failures() const { return failures_; }
  // The connection's state, for the status document: "idle", "resolving", "connecting",
  // "handshake", "ready" or "draining".
  const char* state_name() const;
  // The last connection attempt failed for lack of a file descriptor (and none has
  // succeeded since).
  bool fd_starved() const { return fd_starved_; }

 private:
  // kIdle: no connection (waiting to reconnect, or stopped); kResolving: a host name is
  // being resolved off the loop (uv_getaddrinfo, bounded by connect_timeout); kConnecting:
  // connect() in progress; kHandshake: connected, waiting for HELLO and the first RESUME;
  // kReady: in the pool; kDraining: the worker sent GOAWAY (out of the pool, requests
  // finishing).
  enum class State { kIdle, kResolving, kConnecting, kHandshake, kReady, kDraining };
  struct ResolveRequest;
  static void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void OnConnect(uv_connect_t* req, int status);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnTimer(uv_timer_t* t);
  // StreamWriter::Listener.
  void OnWritten() override;
  void OnWriteError(int uv_error) override;

  // Starts a connection attempt: resolve (inline for IP literals), then ConnectTo().
  void StartReading();
  void Connect();
  void ConnectTo(const sockaddr* address);
  // A connection attempt failed before it was established: logged (rate-limited), then a
  // reconnect with the shared capped back-off.
  // `fd_shortage`: for lack of a file descriptor; logged at VLOG(1) only (the owner
  // reports it).
  void AttemptFailed(LinkError error, bool fd_shortage = false);
  // The attempt found no file descriptor: the owner reports it, the link retries.
  void FdShortage(const std::string& detail);
  // Closes the socket and gives its FdBudget slot back.
  void CloseSocket();
  void RecordError(const LinkError& error);
  void HandleFrames();
  Status HandleFrame(const proto::Frame& frame);
  void Fail(LinkError error);
  void ScheduleReconnect(double delay);
  void Flush();
  uint32_t NextRno();
  struct InFlight {
    LinkRequest* req;
    double start;  // epoch seconds
  };
  using RequestMap = std::unordered_map<uint32_t, InFlight>;
  // Removes a finished request, keeping its map node for the next one.
  void Forget(RequestMap::iterator it);
  void MaybeCloseDrained();

  Observer* observer_;
  const LbOptions* options_;
  uv_loop_t* loop_;
  std::string name_;
  HostPort address_;
  std::optional<std::string> version_;       // for the next connection
  std::optional<std::string> conn_version_;  // of the current connection
  bool wanted_ = true;
  bool stopped_ = false;
  State state_ = State::kIdle;
  UvHandle<uv_tcp_t> tcp_;  // one per connection
  FdBudget* fd_budget_ = nullptr;
  bool holds_fd_slot_ = false;  // tcp_'s socket counts against fd_budget_
  bool fd_starved_ = false;
  UvHandle<uv_timer_t> timer_;
  StreamWriter writer_;
  proto::FrameDecoder decoder_;
  bool got_hello_ = false;
  // The link secret exchange of the current connection: with a secret, the worker joins the
  // pool only after its PROOF verified (docs/protocol.md, "Link authentication").
  LinkHandshake auth_{nullptr, LinkHandshake::Side::kConnecting};
  ResolveRequest* resolving_ = nullptr;  // the lookup in flight (orphaned on timeout)
  // Lookups still running, abandoned ones included (shared with them, as they may finish
  // after the link is gone).
  std::shared_ptr<int> lookups_in_flight_ = std::make_shared<int>(0);
  double resolve_started_ = 0;
  std::string last_error_;
  double last_error_time_ = 0;
  double last_error_logged_ = -1e18;     // loop ms
  double backoff_ = 0;
  double reconnect_at_ = 0;   // loop time (ms) of the next connect attempt
  double connect_started_ = 0;
  double last_read_ = 0, last_write_ = 0, last_keepalive_ = 0;
  // A failure found in the middle of a caller's call (a write error while sending a
  // request); the timer acts on it, so callers never see the link fail under them.
  std::optional<LinkError> deferred_failure_;
  uint32_t last_rno_ = 0;
  uint64_t requests_sent_ = 0;
  uint64_t failures_ = 0;
  size_t resume_size_ = 0;
  PoolWorkerPtr pool_worker_;  // of the current connection
  RequestMap requests_;
  std::vector<RequestMap::node_type> spare_nodes_;  // at most kSpareNodes
  proto::Response response_;  // the RESPONSE being handed to its request (reused)
  std::vector<LinkRequest*> wait_writable_;
  // Requests whose client connection cannot take more response bytes: while any is here
  // the link does not read (every request on it waits: the slow client holds its worker).
  std::unordered_set<LinkRequest*> read_pausers_;
  uint64_t generation_ = 0;  // bumps per connection: stale callbacks are ignored
  char read_buf_[64 * 1024];
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_WORKER_LINK_H_
