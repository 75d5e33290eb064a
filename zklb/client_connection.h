// ClientConnection: one accepted HTTP client socket of the LB — the socket, its timers and
// its write path. Bytes read go to an HttpRequestParser; each request becomes an Exchange
// (exchange.h), served one at a time so pipelined responses leave in order. Response bytes
// go straight to the socket while the kernel keeps up (StreamWriter) and into a
// ResponseBuffer (memory, then a temp file) when the client is slow, so a worker is never
// held up by a client.
//
// Lifecycle (State): kOpen -> kClosingAfterFlush (an error response is on its way, nothing
// more is parsed) -> kLingering -> kClosed; kOpen -> kClosed. Lingering close (nginx's
// lingering_close): when the LB ends a connection while the client may still be sending
// (an early 4xx, a request body it will not read), it sends its FIN after the response and
// reads and discards input for a bounded time and byte count before closing, so the client
// receives the answer instead of a reset. Close() is allowed anywhere, including inside an
// exchange's callbacks: the connection and its exchange are handed to the host, which frees
// them through the loop's DeferredDeleter once the current callback has returned.
//
// Memory: reads go into one buffer shared by every connection of the loop (the parser
// copies what it keeps), and while a request is being served at most kPipelineBytes of
// requests pipelined behind it are held; beyond that the connection is not read.
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_CLIENT_CONNECTION_H_
#define RESUMELB_ZKLB_CLIENT_CONNECTION_H_

#include <uv.h>

#include <memory>
#include <string>

#include "common/deferred_delete.h"
#include "common/http_request_parser.h"
#include "common/stream_writer.h"
#include "common/uv_handle.h"
#include "zklb/access_log.h"
#include "zklb/classifier.h"
#include "zklb/environ.h"
#include "zklb/exchange.h"
#include "zklb/lb_options.h"
#include "zklb/response_budget.h"
#include "zklb/response_buffer.h"

namespace rlb::lb {

class ClientConnection;

// The load balancer, as a client connection sees it.
class ClientConnectionHost : public ExchangeHost {
 public:
  // The connection has closed its socket. The host forgets it and frees it (deferred).
  virtual void ConnectionClosed(ClientConnection* conn) = 0;
};

// What every client connection shares (owned by the LB, fixed for its lifetime).
struct ClientContext {
  const LbOptions* options = nullptr;
  // The loop's read buffer, shared by every connection: data is consumed within OnRead.
  char* read_buffer = nullptr;
  size_t read_buffer_size = 0;
  const Classifier* classifier = nullptr;
  ExchangePolicy policy;
  AccessLog* access_log = nullptr;
  DeferredDeleter* deleter = nullptr;
  WriteBatcher* write_batcher = nullptr;  // responses leave once per loop turn
  ResponseBudget* response_budget = nullptr;
};

class ClientConnection : public ExchangeClient, private StreamWriter::Listener {
 public:
  enum class State { kOpen, kClosingAfterFlush, kLingering, kClosed };

  ClientConnection(ClientConnectionHost* host, const ClientContext* context);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Accepts the next connection from `listener`. On error the connection is closed (and
  // ConnectionClosed called).
  Status Accept(uv_stream_t* listener);
  void Start();
  // Closes gracefully once the current response (if any) is flushed (LB shutdown).
  void CloseWhenIdle();
  // Resets the connection at once (drain timeout).
  void Abort(const std::string& reason) { Reset(reason); }
  State state() const { return state_; }

  // ExchangeClient.
  void WriteResponse(std::string_view bytes) override;
  void ResponseDone() override;
  void Reset(const std::string& reason) override;
  void PauseReading() override;
  void ResumeReading() override;
  const ConnectionInfo& info() const override { return info_; }

 private:
  class ParserHandler;
  // Reading: kIdle before Start; kPaused by back-pressure; kStopped after a parse error;
  // kEof after the client half-closed.
  enum class ReadState { kIdle, kReading, kPaused, kStopped, kEof };

  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnTimer(uv_timer_t* t);
  // StreamWriter::Listener.
  void OnWritten() override;
  void OnWriteError(int uv_error) override;

  void HandleParserState(HttpRequestParser::State state);
  void ParseError(int status, const std::string& reason);
  // The access log's record of a request answered `status` because it could not be parsed.
  void LogParseError(int status, const std::string& reason);
  void WriteToSocket(std::string_view data);
  void Refill();
  bool Flushed() const;
  void MaybeFinishExchange();
  void DropExchange();
  void Close(bool reset);
  void StartLingering();
  // Whether the client reset the connection (read from the kernel, without reading data).
  bool PeerReset() const;
  // The client closed or reset the connection: an exchange with no answer yet is logged
  // as 499 (and cancelled by the close).
  void ClientLeft(bool reset);
  // The timer: Deadline() is the current deadline (loop ms, -1 for none), computed from
  // the timestamps below; Probing() whether a paused connection is checked for a reset
  // every kPausedProbeMs; UpdateTimer() makes sure the timer fires by then.
  double Deadline() const;
  bool Probing() const;
  void UpdateTimer();
  void StartReading();
  void StopReading(ReadState next);
  double Now() const;

  ClientConnectionHost* host_;
  const ClientContext* context_;
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_timer_t> timer_;
  StreamWriter writer_;
  ConnectionInfo info_;
  std::unique_ptr<ParserHandler> handler_;
  std::unique_ptr<HttpRequestParser> parser_;
  std::unique_ptr<Exchange> exchange_;
  std::unique_ptr<ResponseBuffer> buffer_;
  State state_ = State::kOpen;
  ReadState read_state_ = ReadState::kIdle;
  bool close_when_idle_ = false;  // LB shutdown: close after the current response
  bool resuming_ = false;         // inside parser_->Resume(): requests come from the pipeline
  bool pipelined_ = false;        // the client pipelined: its EOF is a half-close
  bool response_paused_ = false;  // the exchange's worker link was asked to stop reading
  bool budget_warned_ = false;
  double message_start_ = 0;   // loop ms: first byte of the current request's headers
  double last_progress_ = 0;   // loop ms: last read or completed write
  double linger_start_ = 0;    // loop ms
  double armed_at_ = -1;       // loop ms the timer fires at, -1 when it is not armed
  uint64_t lingered_bytes_ = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_CLIENT_CONNECTION_H_
