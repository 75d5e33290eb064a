// ClientConnection and Exchange: the LB's HTTP front end.
//
// A ClientConnection is one accepted HTTP client socket. It feeds bytes to its
// HttpRequestParser; each request becomes an Exchange, handled one at a time so pipelined
// responses leave in order. The connection writes response bytes straight to the socket
// while the kernel keeps up and into a ResponseBuffer (memory, then a temp file) when the
// client is slow, so the worker is never held up by a client.
//
// An Exchange is one request's journey: environ and class, a worker from the pool, the
// request frames (body forwarded as it arrives, with flow control), the response
// translated back to HTTP/1.x, and the failure rules (retry idempotent requests, 502, cut
// off a response that cannot complete).
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_CLIENT_CONNECTION_H_
#define RESUMELB_ZKLB_CLIENT_CONNECTION_H_

#include <uv.h>

#include <memory>
#include <string>

#include "common/frame_codec.h"
#include "zklb/http_request_parser.h"
#include "zklb/pool.h"
#include "zklb/response_buffer.h"
#include "zklb/worker_link.h"

namespace rlb::lb {

class LoadBalancer;
class ClientConnection;

// Builds the PEP 3333 environ of a request (exposed for tests and fuzzers).
struct ConnectionInfo {
  std::string remote_ip, local_ip;
  int remote_port = 0, local_port = 0;
};
proto::Pairs BuildEnviron(const ParsedRequest& request, const ConnectionInfo& info);
// "%41b%zz" -> "Ab%zz": %XX decoded to raw bytes, anything malformed left as it is.
std::string PercentDecode(std::string_view s);

class Exchange : public LinkRequest {
 public:
  Exchange(ClientConnection* conn, const ParsedRequest& request);
  ~Exchange() override;

  // Client side.
  void OnBody(std::string_view data);
  void OnRequestComplete();
  // The LB chose `worker`: send the request to it.
  void Assign(PoolWorkerPtr worker);
  // The LB could not find a worker in time.
  void NoWorker();
  void set_waiting(bool w) { waiting_ = w; }

  // LinkRequest.
  void OnResponseStart(proto::Response response) override;
  void OnResponseBody(std::string_view data) override;
  void OnResponseEnd(proto::Outcome outcome) override;
  void OnLinkLost(const std::string& reason) override;
  void OnLinkWritable() override;

  const std::string& request_class() const { return request_class_; }
  bool request_complete() const { return request_complete_; }
  bool response_started() const { return response_started_; }
  bool response_done() const { return response_done_; }
  // Whether the connection must close after this response.
  bool close_after() const { return close_after_; }
  std::string AccessLogLine(double now) const;

 private:
  void ReleaseWorker();
  void SendOwnResponse(int status, const std::string& reason, const std::string& content_type,
                       const std::string& body);
  void Write(std::string data);

  ClientConnection* conn_;
  LoadBalancer* lb_;
  std::string method_, url_;
  int http_minor_;
  bool head_;
  bool retryable_;
  bool client_keep_alive_;
  bool has_body_;
  proto::Pairs environ_;
  std::string request_class_;
  std::string pending_body_;  // received before a worker was assigned
  bool request_complete_ = false;
  bool waiting_ = false;
  int retries_ = 0;
  PoolWorkerPtr worker_;
  WorkerLink* link_ = nullptr;
  uint32_t rno_ = 0;
  std::string worker_name_ = "-";
  bool response_started_ = false;
  bool response_done_ = false;
  bool no_body_ = false;
  bool chunked_ = false;
  bool close_after_ = false;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  double start_ = 0;  // epoch seconds
};

class ClientConnection {
 public:
  explicit ClientConnection(LoadBalancer* lb);
  ~ClientConnection();
  Status Accept(uv_stream_t* listener);
  void Start();

  // Exchange services.
  void WriteRaw(std::string data);  // response bytes, in order, buffered if the client is slow
  void ExchangeResponseDone();      // the response is complete (maybe not flushed yet)
  void Abort(const std::string& reason);  // reset the connection (response cannot complete)
  void PauseReading();
  void ResumeReading();
  LoadBalancer* lb() { return lb_; }
  const ConnectionInfo& info() const { return info_; }
  // Closes gracefully once the current response (if any) is flushed (LB shutdown).
  void CloseWhenIdle();
  bool idle() const { return !exchange_; }

 private:
  class ParserHandler;
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnTimer(uv_timer_t* t);
  void HandleParserState(HttpRequestParser::State state);
  void ParseError(int status, const std::string& reason);
  void Refill();
  void MaybeFinishExchange();
  void Close(bool reset);
  void UpdateTimer();
  void StartReading();
  // Resets the connection from the next loop turn (safe inside exchange callbacks).
  void DeferReset();

  LoadBalancer* lb_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  int open_handles_ = 0;
  ConnectionInfo info_;
  std::unique_ptr<ParserHandler> handler_;
  std::unique_ptr<HttpRequestParser> parser_;
  std::unique_ptr<Exchange> exchange_;
  std::unique_ptr<ResponseBuffer> buffer_;
  size_t queued_bytes_ = 0;  // handed to uv_write, not yet written
  bool reading_ = false;
  bool pause_requested_ = false;
  bool read_eof_ = false;
  bool closing_ = false;
  bool reset_pending_ = false;
  bool close_when_idle_ = false;
  bool close_after_flush_ = false;
  double message_start_ = 0;   // loop ms: first byte of the current request's headers
  double last_progress_ = 0;   // loop ms: last read or completed write
  char read_buf_[64 * 1024];
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_CLIENT_CONNECTION_H_
