// The per-message delivery logs in bounce/, defer/ and trace/ (Postfix's logfile
// queues): one DeliveryLogEntry record (util/ipc/mail_proto.h) per recipient attempt, in
// the attribute encoding, appended with O_APPEND so concurrent writers never interleave.
// qmgr writes them from delivery agents' replies; bounce reads them for notifications;
// postqueue shows the last defer reason per recipient.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/ipc/mail_proto.h"
#include "util/queue/queue_layout.h"

namespace postern::queue {

// Appends entries to LOGQUEUE/ID (kBounce, kDefer or kTrace), creating it (0600) and a
// missing hash subdirectory. With sync, fsyncs before returning (a bounce entry must
// outlive the done mark of its recipient).
Status append_delivery_log(const Layout& layout, std::string_view log_queue, std::string_view id,
                           std::span<const ipc::mail::DeliveryLogEntry> entries, bool sync);

// Every entry in file order; a missing log is an empty list. A damaged record ends the
// list with an error naming the file.
Result<std::vector<ipc::mail::DeliveryLogEntry>> read_delivery_log(const Layout& layout,
                                                                   std::string_view log_queue,
                                                                   std::string_view id);

// Removes the log if it exists.
Status remove_delivery_log(const Layout& layout, std::string_view log_queue, std::string_view id);

}  // namespace postern::queue
