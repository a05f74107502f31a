// Mail forwarded by an alias or .forward to an address local(8) does not deliver itself
// is resubmitted through cleanup as a new message (Postfix's forward.c), so that each
// new recipient has its own queue file status. Recipients of one top-level recipient
// that share a sender and a Delivered-To: value travel in one new message.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "local/local.h"

namespace postern::local {

class Forwarder {
public:
    void append(const MessageAttr& attr);
    // Submits what was collected and logs each recipient "forwarded as ID" (or defers
    // them all when cleanup fails). Returns the worst status.
    DelStat finish(RequestContext& ctx);

private:
    // (sender, delivered) -> recipients with the attributes they are logged with.
    std::map<std::pair<std::string, std::string>, std::vector<MessageAttr>> batches_;
};

}  // namespace postern::local
