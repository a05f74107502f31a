// postdrop's input check: the record stream from sendmail, segment by segment, into a
// maildrop queue file. Kept apart from main() so the rules read in one place.
#pragma once

#include <string>

#include "util/queue/queue_file.h"

namespace postern::postdrop {

struct Limits {
    size_t line_length = 2048;  // content records are at most this long
    long message_size = 0;      // all input bytes; 0 = no limit
};

enum class CopyStatus {
    Ok,         // the file has every record; commit it
    Cancelled,  // input ended before E: the caller gave up (not an error)
    Malformed,  // broken or unexpected records: fatal, the file goes away
    Refused,    // well-formed but not acceptable (no sender or recipient, too big)
};

struct CopyOutcome {
    CopyStatus status = CopyStatus::Ok;
    long cleanup_status = 0;  // for Refused: a CleanupStatus bit
    std::string error;        // for Malformed
    std::string reason;       // for the caller ("" as Postfix sends)
};

// Reads records from `fd` (a pipe) and writes the message to `file`, overriding the
// arrival time and keeping only the attributes a user may set.
CopyOutcome copy_input(int fd, queue::QueueFileWriter& file, const Limits& limits);

}  // namespace postern::postdrop
