// Exchange: one HTTP request's journey through the LB — classified, dispatched to a worker
// (or queued for one), its body forwarded with flow control, the worker's response
// translated back to HTTP/1.x, and the failure rules: an idempotent request whose worker was
// lost before the response started is re-dispatched (up to max_retries); otherwise 502; a
// response cut off after it started resets the client connection.
//
// The exchange talks to its surroundings through two narrow interfaces, so it can be tested
// without sockets: ExchangeClient (the client connection: write bytes, pause reading, reset)
// and ExchangeHost (the LB: dispatch, waiting queue, pool slots). Data flows one way:
// ClientConnection -> Exchange -> ExchangeHost/WorkerLink, and back through LinkRequest.
//
// Retry policy (docs/operations.md, "Failures"): an idempotent request (GET or HEAD without
// a body) whose worker is lost before the response starts is re-dispatched, at most
// max_retries times (1 by default) and only while the host's retry budget allows. A request
// whose worker died while it had the request becomes a suspect; if a second worker dies
// with it, it is a suspected query of death: 502 and one ERROR line, never another retry.
//
// States (State below) and their transitions:
//   kNew --Dispatch--> kWaiting --Assign--> kSent --OnResponseStart--> kResponding
//   kNew --Assign--> kSent;  kSent --OnLinkLost (retry)--> kWaiting or kSent
//   kWaiting --NoWorker (503)--> kDone;  kSent --OnLinkLost (502)--> kDone
//   kResponding --OnResponseEnd(complete)--> kDone
//   kSent --OnResponseStart(invalid head: 502)--> kDone
//   kResponding --OnResponseBody(past the Content-Length)--> kDone (closes after)
//   kResponding --OnResponseEnd(short of the Content-Length)--> kReset
//   kSent/kResponding --OnResponseEnd(failed) / OnLinkLost mid-body--> kReset
//   kNew/kWaiting/kSent --ClientGone--> kAbandoned (the client left before an answer: 499)
//   any --Finish--> (detached: no more events; the owner deletes it, deferred)
// LinkRequest callbacks: exactly one of OnResponseEnd / OnLinkLost ends a link request;
// OnResponseStart comes at most once, before any OnResponseBody.
//
// Thread rules: loop thread only. REQUIRES: the host and client outlive the exchange.
#ifndef RESUMELB_ZKLB_EXCHANGE_H_
#define RESUMELB_ZKLB_EXCHANGE_H_

#include <cstdint>
#include <string>

#include "common/frame_codec.h"
#include "common/http_request_parser.h"
#include "zklb/access_log.h"
#include "zklb/environ.h"
#include "zklb/lb_stats.h"
#include "zklb/pool.h"
#include "zklb/response_head.h"
#include "zklb/link_request.h"

namespace rlb::lb {

class Exchange;

// The client connection, as an exchange sees it.
class ExchangeClient {
 public:
  virtual ~ExchangeClient() = default;
  // Response bytes, in order; buffered when the client is slow. The bytes are copied
  // (into the socket's pending buffer, which is reused, or the response buffer): callers
  // pass views of what they have, with no string of their own per write.
  virtual void WriteResponse(std::string_view bytes) = 0;
  // The response is complete (maybe not flushed yet).
  virtual void ResponseDone() = 0;
  // Resets the connection: the response cannot complete. The exchange is finished by it.
  virtual void Reset(const std::string& reason) = 0;
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
  virtual const ConnectionInfo& info() const = 0;
};

// The load balancer, as an exchange sees it.
class ExchangeHost {
 public:
  virtual ~ExchangeHost() = default;
  // Chooses a worker now (Exchange::Assign) or queues the exchange until one is available
  // (Assign later, or NoWorker after worker_wait_timeout).
  virtual void Dispatch(Exchange* exchange) = 0;
  // Removes the exchange from the waiting queue, if it is there.
  virtual void ForgetWaiting(Exchange* exchange) = 0;
  // Gives back the pool slot taken for the exchange.
  virtual void ReleaseWorker(const PoolWorkerPtr& worker) = 0;
  // The LB is shutting down: no retries, connections close after their response.
  virtual bool draining() const = 0;
  // The retry budget: AcquireRetry() is true when one more request may be re-dispatched
  // now; each true is matched by one ReleaseRetry() when that request is finished.
  virtual bool AcquireRetry() = 0;
  virtual void ReleaseRetry() = 0;
};

// What an exchange needs to know besides its request (fixed for the LB's lifetime).
struct ExchangePolicy {
  int max_retries = 5;
  const std::string* disconnect_message = nullptr;  // the 502 page
  LbStats* stats = nullptr;
  // The Date value for responses (an HTTP date), or "" to send none (tests).
  std::string_view (*http_date)() = &HttpDateNow;
};

class Exchange : public LinkRequest {
 public:
  enum class State { kNew, kWaiting, kSent, kResponding, kDone, kReset, kAbandoned };

  Exchange(ExchangeHost* host, ExchangeClient* client, const ExchangePolicy& policy,
           const ParsedRequest& request, proto::Pairs environ, std::string request_class);
  ~Exchange() override;  // Finish()es
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Client side. Body bytes are gathered and sent as few frames as possible: OnBody sends
  // only full frames; the connection calls FlushBody after each read.
  void OnBody(std::string_view data);
  void FlushBody();
  void OnRequestComplete();

  // Host side. Assign: the request goes to `worker` over `link` (REQUIRES: kNew, kWaiting
  // or kSent after a lost link). NoWorker: none became available in time (503).
  void Assign(PoolWorkerPtr worker, RequestChannel* link);
  void NoWorker();
  void MarkWaiting();

  // LinkRequest.
  void OnResponseStart(const proto::Response& response) override;
  void OnResponseBody(std::string_view data) override;
  void OnResponseEnd(proto::Outcome outcome) override;
  void OnLinkLost(const LinkError& error) override;
  void OnLinkWritable() override;

  // The client went away before any answer: the exchange is logged as 499. REQUIRES:
  // !response_started().
  void ClientGone();

  // The client connection's response buffer is over budget: the worker link stops reading
  // until ResumeResponse (or the end of the exchange).
  void PauseResponse();
  void ResumeResponse();

  // Detaches from everything (cancels the worker's request, leaves the waiting queue, gives
  // back the pool slot). Idempotent; afterwards no callback reaches the exchange.
  void Finish();

  State state() const { return state_; }
  const std::string& request_class() const { return request_class_; }
  bool request_complete() const { return request_complete_; }
  bool response_started() const { return state_ == State::kResponding || state_ == State::kDone; }
  bool response_done() const { return state_ == State::kDone; }
  // Whether the connection must close after this response.
  bool close_after() const { return close_after_; }
  // What the access log and the metrics record of this request (views into the exchange:
  // use it before the exchange goes), and its access log line in the text format.
  RequestRecord Record(double now) const;
  std::string AccessLogLine(double now) const;

 private:
  void ReleaseWorker();
  // Stops taking frames for the request (cancelling it at the worker when `cancel`) and
  // gives back the pool slot.
  void DropWorker(bool cancel);
  // "METHOD host url (worker NAME)" for log lines about this request.
  std::string Describe() const;
  void SendOwnResponse(int status, const std::string& reason, const std::string& body);
  // The 502 for a request whose worker was lost and that is not retried.
  void BadGateway(const std::string& reason);

  ExchangeHost* host_;
  ExchangeClient* client_;
  ExchangePolicy policy_;
  // The request (immutable).
  const std::string method_, url_;
  const std::string host_header_;  // for log lines naming the request
  const int http_minor_;
  const bool head_;
  const bool retryable_;
  const bool client_keep_alive_;
  const proto::Pairs environ_;
  const std::string request_class_;
  const double start_;  // epoch seconds

  State state_ = State::kNew;
  bool finished_ = false;
  bool queued_ = false;  // in the host's waiting queue (kWaiting, or abandoned while there)
  bool request_complete_ = false;
  std::string pending_body_;  // received, not yet sent (no worker yet, or until FlushBody)
  int retries_ = 0;
  bool holds_retry_ = false;  // counted in the host's retry budget
  bool suspect_ = false;      // a worker died while it had this request
  PoolWorkerPtr worker_;
  RequestChannel* link_ = nullptr;  // while the worker has the request
  uint32_t rno_ = 0;
  std::string worker_name_ = "-";
  ResponseHead response_;  // framing of the response being relayed
  bool close_after_ = false;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  uint64_t request_body_bytes_ = 0;  // received from the client
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_EXCHANGE_H_
