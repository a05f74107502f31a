// Listing the queue as Postfix's showq(8) does: which files are listed, which records
// count, how defer-log reasons take the place of queue-file recipients. postqueue reads
// the queue itself when it may (root, mail_owner); other users get the same listing from
// the showq daemon (public/showq), which runs as mail_owner and sends one record per
// message (to_record / from_record below).
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/ipc/attr.h"
#include "util/queue/queue_layout.h"

namespace postern::queue {

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

    // showq's record: queue_name, queue_id, time, size, forced_expire, sender, then
    // recipient/reason pairs.
    ipc::AttrRecord to_record() const;
    static Result<ListedMessage> from_record(const ipc::AttrRecord& record);
};

// The attribute of showq's closing record (without it the listing is incomplete).
inline constexpr std::string_view kShowqEnd = "end_of_queue";

struct ShowSettings {
    std::string empty_address = "MAILER-DAEMON";
    long duplicate_filter_limit = 1000;
    bool utf8 = true;     // smtputf8_enable: keep valid UTF-8 in printable()
    bool long_ids = false;
};

// Postfix's printable(): control and non-ASCII bytes become '?', except (with utf8)
// sequences that start a UTF-8 character.
std::string printable(std::string_view text, bool utf8);

// Calls `sink` for every listable message in maildrop, active, incoming, deferred, hold
// (showq's order). A false return from the sink stops the scan (output closed). An
// unreadable queue directory is an error, as it is fatal to showq.
Status scan_queues(const Layout& layout, const ShowSettings& settings,
                   const std::function<bool(const ListedMessage&)>& sink);

// Reads one open queue file as showq_report() does. False when the file shows nothing
// (no sender record before the end or before damage).
bool read_listed_message(int fd, const struct stat& st, const Layout& layout,
                         const ShowSettings& settings, ListedMessage& out);

}  // namespace postern::queue
