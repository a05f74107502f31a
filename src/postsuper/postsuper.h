// postsuper(1): queue maintenance by the mail system owner. Operations by queue ID
// (delete, hold, release, requeue, expire) and operations over whole queue directories
// (structure check, purge of stale temporary files, the same operations on ALL), with
// Postfix's messages and counts.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/queue/queue_layout.h"

namespace postern::postsuper {

enum Action : unsigned {
    kStruct = 1u << 0,          // -s: fix file organization
    kPurge = 1u << 1,           // -p: remove old temporary files
    kDeleteOne = 1u << 2,       // -d ID
    kDeleteAll = 1u << 3,       // -d ALL
    kRequeueOne = 1u << 4,      // -r ID
    kRequeueAll = 1u << 5,
    kHoldOne = 1u << 6,         // -h ID
    kHoldAll = 1u << 7,
    kReleaseOne = 1u << 8,      // -H ID
    kReleaseAll = 1u << 9,
    kExpireOne = 1u << 10,      // -e ID
    kExpireAll = 1u << 11,
    kExpireReleaseOne = 1u << 12,  // -f ID: expire, and release if on hold
    kExpireReleaseAll = 1u << 13,
};
inline constexpr unsigned kByQueueId =
    kDeleteOne | kRequeueOne | kHoldOne | kReleaseOne | kExpireOne | kExpireReleaseOne;
// Mass renames postponed to a second pass when names were fixed to match inodes.
inline constexpr unsigned kAfterInodeFix =
    kRequeueAll | kHoldAll | kReleaseAll | kExpireAll | kExpireReleaseAll;

// Postfix's MAIL_QUEUE_STAT_EXPIRE: a force-expired message file has group-execute.
inline constexpr mode_t kStatExpire = S_IXGRP;
// Temporary files older than this are removed by -p (Postfix's MAX_TEMP_AGE).
inline constexpr long kMaxTempAge = 60 * 60 * 24;

struct Counters {
    int requeued = 0, held = 0, released = 0, deleted = 0, expired = 0;
    int inode_fixed = 0, inode_mismatch = 0, position_mismatch = 0;
};

// What postsuper knows about each queue directory.
struct QueueInfo {
    std::string_view name;
    bool message_queue;  // holds message files (else per-message logs)
    bool recurse;        // may have hash subdirectories
};
// Fatal "invalid directory name: x" for a name that is not a queue.
const QueueInfo& find_queue_info(std::string_view name);

// The per-message logs that go with a message file.
inline constexpr std::string_view kLogQueues[] = {queue::kBounce, queue::kDefer, queue::kTrace};

struct Context {
    const queue::Layout& layout;
    Counters counts;
};

// ---- by_id.cc: one message by queue ID; each returns 1 when it acted ---------------
using Operator = int (*)(Context&, const std::vector<std::string>&, const std::string&);
int delete_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id);
int requeue_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id);
int hold_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id);
int release_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id);
int expire_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id);
int expire_release_one(Context& ctx, const std::vector<std::string>& queues,
                       const std::string& id);
// Applies `op` to every line of standard input ("-d -").
int operate_stream(Context& ctx, Operator op, const std::vector<std::string>& queues);

// Postfix's mail_open_ok(): a regular, complete (u=rwx) file; path and stat filled in.
bool message_file_ok(const queue::Layout& layout, std::string_view queue, std::string_view id,
                     std::string& path, struct stat& st);
// rename() that creates a missing hash subdirectory; fatal on errors other than ENOENT.
int post_rename(const std::string& from, const std::string& to);
// remove() that is fatal on errors other than ENOENT.
int post_remove(const std::string& path);
// Sets the force-expire mode bit; false when it was set already or could not be set.
bool set_expired(const std::string& path, const struct stat& st);

// ---- structure.cc: the walk over whole queue directories ---------------------------
void super(Context& ctx, const std::vector<std::string>& queues, unsigned& action);

}  // namespace postern::postsuper
