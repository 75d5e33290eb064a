// WorkerLink: the LB's one multiplexed connection to one worker address.
//
// It connects (with a timeout), exchanges HELLOs, and joins the pool when the first RESUME
// arrives (each later RESUME replaces the résumé). Requests are multiplexed by request
// number; their frames are batched into one write buffer. KEEPALIVEs go out on an idle
// connection and the worker must answer: a worker silent for worker_timeout is dropped, so
// a hung (SIGSTOPped) or vanished worker is noticed in seconds. After a drop the link
// leaves the pool at once, tells every request on it (LinkRequest::OnLinkLost), and
// reconnects: immediately after an established connection, then with a doubling back-off.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_WORKER_LINK_H_
#define RESUMELB_ZKLB_WORKER_LINK_H_

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/frame_codec.h"
#include "common/net_address.h"
#include "zklb/pool.h"

namespace rlb::lb {

class LoadBalancer;

// A request travelling over a link (implemented by the LB's Exchange).
class LinkRequest {
 public:
  virtual ~LinkRequest() = default;
  virtual void OnResponseStart(proto::Response response) = 0;
  virtual void OnResponseBody(std::string_view data) = 0;
  virtual void OnResponseEnd(proto::Outcome outcome) = 0;
  // The connection failed before RESPONSE_END: the request is detached from the link.
  virtual void OnLinkLost(const std::string& reason) = 0;
  // The link's write buffer fell below its high-water mark (uploads may continue).
  virtual void OnLinkWritable() {}
};

class WorkerLink {
 public:
  WorkerLink(LoadBalancer* lb, uv_loop_t* loop, std::string name, HostPort address,
             std::optional<std::string> version);
  ~WorkerLink();
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  void Start();
  // Whether the address is still configured. An unwanted link keeps a live connection
  // (ZooKeeper flapping must not disturb it) but does not reconnect.
  void SetWanted(bool wanted, std::optional<std::string> version);
  bool wanted() const { return wanted_; }
  // True when the handles are closed and the link can be deleted.
  bool Dead() const { return timer_closed_ && open_handles_ == 0; }
  // Closes everything (LB shutdown); requests on it get OnLinkLost.
  void Stop();

  // Sends a request; returns its request number. The link must be in the pool.
  uint32_t SendRequest(LinkRequest* req, std::string_view request_class, const proto::Pairs& environ);
  void SendBody(uint32_t rno, std::string_view data);
  void SendEnd(uint32_t rno);
  // The request no longer wants frames; with `cancel`, the worker is told to stop.
  void Detach(uint32_t rno, bool cancel);
  // Write buffer above the high-water mark: uploads should pause.
  bool congested() const;
  void WaitWritable(LinkRequest* req);

  const std::string& name() const { return name_; }
  const std::optional<std::string>& version() const { return version_; }
  const PoolWorkerPtr& pool_worker() const { return pool_worker_; }
  bool connected() const { return state_ == State::kReady || state_ == State::kDraining; }
  size_t queued_bytes() const { return out_.size() + writing_bytes_; }
  size_t in_flight() const { return requests_.size(); }
  std::optional<double> oldest_start() const;  // epoch seconds of the oldest request
  uint64_t requests_sent() const { return requests_sent_; }
  size_t resume_size() const { return resume_size_; }

 private:
  enum class State { kIdle, kConnecting, kHandshake, kReady, kDraining };
  static void OnConnect(uv_connect_t* req, int status);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnTimer(uv_timer_t* t);
  void Connect();
  void HandleFrames();
  Status HandleFrame(const proto::Frame& frame);
  void Fail(const std::string& reason, bool log_as_warning);
  void ScheduleReconnect(double delay);
  void Flush();
  uint32_t NextRno();
  void MaybeCloseDrained();

  LoadBalancer* lb_;
  uv_loop_t* loop_;
  std::string name_;
  HostPort address_;
  std::optional<std::string> version_;       // for the next connection
  std::optional<std::string> conn_version_;  // of the current connection
  bool wanted_ = true;
  State state_ = State::kIdle;
  uv_tcp_t* tcp_ = nullptr;  // heap: freed in its close callback
  uv_timer_t timer_;
  int open_handles_ = 0;  // libuv handles not yet closed (the link outlives them)
  bool timer_closed_ = false;
  proto::FrameDecoder decoder_;
  bool got_hello_ = false;
  std::string out_;
  size_t writing_bytes_ = 0;
  bool writing_ = false;
  double backoff_ = 0;
  double reconnect_at_ = 0;   // loop time (ms) of the next connect attempt
  double connect_started_ = 0;
  double last_read_ = 0, last_write_ = 0, last_keepalive_ = 0;
  std::string deferred_failure_;  // a write error found mid-call; the timer acts on it
  bool drained_close_ = false;    // the deferred failure is the close after GOAWAY
  uint32_t last_rno_ = 0;
  uint64_t requests_sent_ = 0;
  size_t resume_size_ = 0;
  PoolWorkerPtr pool_worker_;  // of the current connection
  struct InFlight {
    LinkRequest* req;
    double start;  // epoch seconds
  };
  std::unordered_map<uint32_t, InFlight> requests_;
  std::vector<LinkRequest*> wait_writable_;
  uint64_t generation_ = 0;  // bumps per connection: stale callbacks are ignored
  char read_buf_[64 * 1024];
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_WORKER_LINK_H_
