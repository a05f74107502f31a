// postqueue(1): list the queue (Postfix's mailq and JSON formats) and ask for delivery
// of deferred mail. Root and mail_owner read the queue directory themselves; other users
// ask the showq daemon (public/showq), as every Postfix user does. Either way one
// queue::ListedMessage per queue file goes to the formatters of showq_compat.c /
// showq_json.c.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/queue/queue_layout.h"
#include "util/queue/queue_listing.h"
#include "util/rewrite/match_list.h"
#include "util/log/log.h"

namespace postern::postqueue {

// "postqueue: fatal: text" on stderr and in the log, then exit 69 (EX_UNAVAILABLE):
// Postfix's postqueue installs a cleanup hook that turns every fatal exit, usage errors
// included, into that status.
template <class... Args>
[[noreturn]] void fatal(const char* fmt, Args... args) {
    log::fatal_status(69, fmt, args...);
}

using queue::ListedMessage;
using queue::ListedRecipient;
using queue::printable;
using queue::ShowSettings;

// ---- showq_client.cc: the listing from the showq service ------------------------

// Streams the service's listing into `sink`. False (with Postfix's warning) when the
// service cannot be reached: the caller then reads the queue itself.
bool list_via_showq(const queue::Layout& layout, const std::function<bool(const ListedMessage&)>& sink);

// ---- show_format.cc: Postfix's output formats ------------------------------------

// Postfix's json_quote() followed by printable().
std::string json_quote(std::string_view text, bool utf8);

std::string compat_heading(bool long_ids);
std::string compat_message(const ListedMessage& m, bool long_ids);
std::string compat_summary(unsigned long count, unsigned long total_size);
std::string json_message(const ListedMessage& m, bool utf8);

// ---- flush.cc: delivery requests -------------------------------------------------

struct FlushContext {
    const queue::Layout& layout;
    const rewrite::MatchList& fast_flush_domains;
};

void flush_queue(const queue::Layout& layout);
void flush_site(const FlushContext& ctx, std::string_view site);
void flush_file(const queue::Layout& layout, std::string_view id);

// Postfix's valid_hostname() / valid_mailhost_literal() without the warnings.
bool valid_hostname(std::string_view name);
bool valid_mailhost_literal(std::string_view literal);

}  // namespace postern::postqueue
