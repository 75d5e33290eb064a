// The two sides of one request on a worker link, as interfaces, so an Exchange and a
// WorkerLink know each other only through them (and tests can stand in for either).
//
// Thread rules: loop thread only.
#ifndef RESUMELB_ZKLB_LINK_REQUEST_H_
#define RESUMELB_ZKLB_LINK_REQUEST_H_

#include <cstdint>
#include <string_view>

#include "common/frame_codec.h"
#include "zklb/link_failure.h"

namespace rlb::lb {

// A request travelling over a link (implemented by the LB's Exchange). Exactly one of
// OnResponseEnd and OnLinkLost ends it; after either, the link forgets the request.
class LinkRequest {
 public:
  virtual ~LinkRequest() = default;
  // At most once, before any OnResponseBody. `response` is the link's: valid during the
  // call only.
  virtual void OnResponseStart(const proto::Response& response) = 0;
  virtual void OnResponseBody(std::string_view data) = 0;
  // Terminal: the worker finished (or failed) the response.
  virtual void OnResponseEnd(proto::Outcome outcome) = 0;
  // Terminal: the connection failed before RESPONSE_END.
  virtual void OnLinkLost(const LinkError& error) = 0;
  // The link's write buffer fell below its high-water mark (uploads may continue).
  virtual void OnLinkWritable() {}
};

// The sending side of a link, as a request uses it (implemented by WorkerLink). None of
// these calls fails the link under the caller: a write error is acted on later, from the
// link's own timer, and reaches the request as OnLinkLost.
class RequestChannel {
 public:
  virtual ~RequestChannel() = default;
  // Sends the request head; returns its request number. REQUIRES: the link is in the pool.
  virtual uint32_t SendRequest(LinkRequest* req, std::string_view request_class,
                               const proto::Pairs& environ) = 0;
  virtual void SendBody(uint32_t rno, std::string_view data) = 0;
  virtual void SendEnd(uint32_t rno) = 0;
  // The request no longer wants frames; with `cancel`, the worker is told to stop.
  virtual void Detach(uint32_t rno, bool cancel) = 0;
  // The write buffer is above its high-water mark: uploads should pause until
  // LinkRequest::OnLinkWritable (after WaitWritable).
  virtual bool congested() const = 0;
  virtual void WaitWritable(LinkRequest* req) = 0;
  // The request's client cannot take more response bytes now (the LB's response buffers
  // are full): the link stops reading until every such request resumed or ended.
  virtual void PauseReads(LinkRequest* req) = 0;
  virtual void ResumeReads(LinkRequest* req) = 0;
};

}  // namespace rlb::lb

#endif  // RESUMELB_ZKLB_LINK_REQUEST_H_
