// ReasonPhrase: the reason phrase of the HTTP statuses this project's servers answer with
// themselves (the LB's own error responses, the admin listeners' pages and errors).
//
// Thread rules: a pure function; any thread.
#ifndef RESUMELB_COMMON_REASON_PHRASE_H_
#define RESUMELB_COMMON_REASON_PHRASE_H_

namespace rlb {

// The standard reason phrase of `status` (RFC 9110), or "Error" for a status the project
// never generates.
const char* ReasonPhrase(int status);

}  // namespace rlb

#endif  // RESUMELB_COMMON_REASON_PHRASE_H_
