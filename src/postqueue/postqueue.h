// postqueue(1): list the queue (Postfix's mailq and JSON formats) and ask for delivery
// of deferred mail. Postfix lists through the showq(8) daemon; Postern reads the queue
// directory itself (see tests/DIFFERENCES.md), but keeps showq's record semantics: one
// ListedMessage per queue file, then the formatters of showq_compat.c / showq_json.c.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/queue/queue_layout.h"
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

// What showq(8) reports about one queue file (its attribute stream to postqueue).
struct ListedRecipient {
    std::string address;  // external (quoted) and printable form
    std::string reason;   // last defer reason; empty when none
};

struct ListedMessage {
    std::string queue;
    std::string id;
    long arrival = 0;     // first T record, else the file's mtime
    long size = 0;        // first field of the C record, else the file size
    bool forced_expire = false;
    std::string sender;   // MAILER-DAEMON (empty_address_recipient) for <>
    std::vector<ListedRecipient> recipients;
};

struct ShowSettings {
    std::string empty_address = "MAILER-DAEMON";
    long duplicate_filter_limit = 1000;
    bool utf8 = true;     // smtputf8_enable: keep valid UTF-8 in printable()
    bool long_ids = false;
};

// ---- showq.cc: reading the queue ---------------------------------------------------

// Calls `sink` for every listable message in maildrop, active, incoming, deferred, hold
// (showq's order). A false return from the sink stops the scan (output closed).
void scan_queues(const queue::Layout& layout, const ShowSettings& settings,
                 const std::function<bool(const ListedMessage&)>& sink);

// Reads one open queue file as showq_report() does. False when the file shows nothing
// (no sender record before the end or before damage).
bool read_listed_message(int fd, const struct stat& st, const queue::Layout& layout,
                         const ShowSettings& settings, ListedMessage& out);

// ---- show_format.cc: Postfix's output formats ------------------------------------

// Postfix's printable(): control and non-ASCII bytes become '?', except (with utf8)
// sequences that start a UTF-8 character.
std::string printable(std::string_view text, bool utf8);
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
