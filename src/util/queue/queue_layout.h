// The queue directory tree: which queues exist, where a (queue, id) pair lives on disk
// (hashed subdirectories per hash_queue_names/hash_queue_depth), moving a file between
// queues, listing a queue, and creating/checking the tree with its owners and modes.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::config {
class Config;
}

namespace postern::queue {

inline constexpr std::string_view kMaildrop = "maildrop";
inline constexpr std::string_view kIncoming = "incoming";
inline constexpr std::string_view kActive = "active";
inline constexpr std::string_view kDeferred = "deferred";
inline constexpr std::string_view kHold = "hold";
inline constexpr std::string_view kCorrupt = "corrupt";
inline constexpr std::string_view kSaved = "saved";
inline constexpr std::string_view kBounce = "bounce";
inline constexpr std::string_view kDefer = "defer";
inline constexpr std::string_view kTrace = "trace";
inline constexpr std::string_view kFlush = "flush";

// The queues that hold message files, in the order postcat -q and postsuper search them.
inline constexpr std::string_view kMessageQueues[] = {kMaildrop, kIncoming, kActive,
                                                      kDeferred, kHold,     kSaved};

class Layout {
public:
    Layout() = default;
    Layout(std::string queue_directory, std::vector<std::string> hashed_queues, int depth,
           bool long_ids);
    // queue_directory, hash_queue_names, hash_queue_depth, enable_long_queue_ids.
    static Result<Layout> from_config(const config::Config& config);

    const std::string& queue_directory() const { return queue_directory_; }
    bool long_ids() const { return long_ids_; }
    int hash_depth() const { return depth_; }
    bool is_hashed(std::string_view queue) const;

    // "QDIR/deferred/A/" (with trailing slash); queue and id must pass the *_ok checks
    // (a bad one is a programming error: log::panic).
    std::string dir(std::string_view queue, std::string_view id) const;
    std::string path(std::string_view queue, std::string_view id) const;
    // Relative form "deferred/A/ID", as postcat prints it.
    std::string relative_path(std::string_view queue, std::string_view id) const;

    // Every queue ID in a queue, hashed or not, sorted (= by arrival time for long IDs).
    // Temporary files (names that are not IDs) are skipped.
    Result<std::vector<std::string>> list(std::string_view queue) const;

    // Moves the file by rename, creating a missing hash subdirectory; the ID is kept.
    Status move(std::string_view id, std::string_view from, std::string_view to) const;
    Status remove(std::string_view queue, std::string_view id) const;
    // The queue among kMessageQueues that holds `id`, or an error.
    Result<std::string> find(std::string_view id) const;

private:
    std::string queue_directory_;
    std::vector<std::string> hashed_;
    int depth_ = 1;
    bool long_ids_ = false;
};

// Creates the missing directories of `path`'s parent, mode 0700 (as Postfix's
// mail_queue_mkdirs).
Status make_parent_dirs(const std::string& path);

// Who owns what, resolved from mail_owner and setgid_group.
struct Ownership {
    uid_t mail_uid = 0;
    gid_t mail_gid = 0;
    gid_t setgid_gid = 0;
};
Result<Ownership> resolve_ownership(const config::Config& config);
// A sandbox instance: everything belongs to the invoking user.
Ownership current_user_ownership();

struct DirSpec {
    std::string_view name;  // "" is the queue directory itself
    bool mail_owned;        // else root
    bool setgid_group;      // group is setgid_group
    mode_t mode;
};
// Postfix's postfix-files entries for the queue directory tree.
const std::vector<DirSpec>& queue_dir_specs();

// Creates missing directories and sets owners and modes (owners only when we may).
Status create_tree(const Layout& layout, const Ownership& owners);
// Creates only the directories that do not exist, with their owners and modes, and
// leaves existing ones alone (postfix-script's "post-install create-missing").
Status create_missing_tree(const Layout& layout, const Ownership& owners);
// One line per directory whose existence, owner, group or mode is wrong, saying how to
// fix it; empty when all is well.
std::vector<std::string> check_tree(const Layout& layout, const Ownership& owners);

}  // namespace postern::queue
