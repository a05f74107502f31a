// One verdict for every recipient of a delivery request: the agents that do not look at
// the message (error(8), its retry service, discard(8)) log Postfix's delivery record
// per recipient ("to=<...>, relay=none, delay=..., dsn=5.1.1, status=bounced (reason)")
// and answer qmgr with the same status for each.
#pragma once

#include <sys/time.h>

#include <functional>
#include <string>

#include "util/ipc/mail_proto.h"

namespace postern::dsn {

struct Verdict {
    std::string status;      // RFC 3463 code, class 2, 4 or 5
    std::string action;      // RFC 3464 action: delivered, delayed, failed
    std::string log_status;  // sent, deferred, bounced
    std::string reason;
};

// The status and text of an agent's next-hop argument ("5.1.1 User unknown ..."): a
// code of the wrong class (or none) becomes `fallback` (Postfix's bounce_append and
// defer_append do the same), the text after a code is the reason.
Verdict verdict_from_nexthop(std::string_view nexthop, std::string_view fallback);

// Logs the delivery record of each recipient and returns the reply. `handoff` is when
// the agent received the request; `delay_digits` is delay_logging_resolution_limit;
// `relay` is the relay= of the log line (pipe(8): its service name).
ipc::mail::DeliveryReply apply_verdict(const ipc::mail::DeliveryRequest& request,
                                       const Verdict& verdict, timeval handoff, int delay_digits,
                                       const std::string& relay = "none");

// The whole main() of such an agent: a single-client daemon (util/daemon/server.h) that
// answers each DeliveryRequest with decide(request, master.cf service name) for every
// recipient. A malformed request is logged and the connection closed, without a reply.
using VerdictFn = std::function<Verdict(const ipc::mail::DeliveryRequest&, const std::string& service)>;
int run_uniform_agent(int argc, char** argv, VerdictFn decide);

}  // namespace postern::dsn
