// pickup(8): moves mail from maildrop/ into the queue through cleanup(8). A maildrop file
// is read twice: once whole, to validate it and to collect the recipients that sendmail -t
// put after the message, then again to stream the message to cleanup. It is removed
// only after cleanup answered that its own copy is safely on disk.
#pragma once

#include <sys/stat.h>

#include <string>

#include "util/config/config.h"
#include "util/queue/queue_layout.h"

namespace postern::pickup {

struct Settings {
    std::string queue_directory;
    long cleanup_flags = 0;  // kCleanupDefault | LocalSubmit | Bounce, less receive_override_options
    long ipc_timeout = 3600;
    uid_t mail_owner = 0;
};
Settings settings_from(const config::Config& cfg);

// What became of one file.
enum class Outcome {
    Removed,      // in the queue now (or not worth keeping: no recipients), file removed
    Kept,         // try again later (cleanup trouble, not yet readable)
    Quarantined,  // malformed: moved to corrupt/
    Skipped,      // not a complete regular file: left alone
    CleanupDown,  // cleanup cannot be reached: stop this scan
};

// Hands maildrop/`id` to cleanup.
Outcome pickup_file(const Settings& s, const queue::Layout& layout, const std::string& id);

}  // namespace postern::pickup
