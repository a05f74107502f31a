// Operations on one message named by its queue ID. Each looks for the message file in
// the given queues (twice, in case it moved between queues meanwhile) and logs
// "ID: removed" / "placed on hold" / ... as Postfix's postsuper does.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <utime.h>

#include <ctime>
#include <iostream>

#include "postsuper/postsuper.h"
#include "util/log/log.h"
#include "util/queue/mail_open_ok.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"

namespace postern::postsuper {
namespace {

bool bad_id(const std::string& id) {
    if (queue::id_ok(id)) return false;
    log::warn("invalid mail queue id: %s", id.c_str());
    return true;
}

bool is(std::string_view a, std::string_view b) { return a == b; }

// Moves the message from the first queue that has it to `to`; logs `what`.
int move_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id,
             std::string_view to, const char* what, bool (*skip)(std::string_view)) {
    for (int tries = 0; tries < 2; ++tries) {
        for (const std::string& q : queues) {
            if (skip(q) || !find_queue_info(q).message_queue) continue;
            std::string old_path;
            struct stat st;
            if (!message_file_ok(ctx.layout, q, id, old_path, st)) continue;
            std::string new_path = ctx.layout.relative_path(to, id);
            if (post_rename(old_path, new_path) != 0) continue;  // lost a race
            if (is(to, queue::kMaildrop)) {
                // A requeued message starts over: fresh time stamps.
                time_t now = time(nullptr);
                struct utimbuf tbuf{now, now};
                if (utime(new_path.c_str(), &tbuf) != 0)
                    log::warn("%s: reset time stamps: %s", new_path.c_str(), strerror(errno));
            }
            log::info("%s: %s", id.c_str(), what);
            return 1;
        }
    }
    return 0;
}

}  // namespace

int delete_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id) {
    if (bad_id(id)) return 0;
    // The logs go first, and only when the message file exists: a reused queue ID then
    // at worst loses a log, never another message's file.
    for (int tries = 0; tries < 2; ++tries) {
        for (const std::string& q : queues) {
            if (!find_queue_info(q).message_queue) continue;
            std::string path;
            struct stat st;
            if (!message_file_ok(ctx.layout, q, id, path, st)) continue;
            for (std::string_view log_queue : kLogQueues)
                post_remove(ctx.layout.relative_path(log_queue, id));
            if (post_remove(path) == 0) {
                log::info("%s: removed", id.c_str());
                return 1;
            }
        }
    }
    return 0;
}

int requeue_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id) {
    if (bad_id(id)) return 0;
    return move_one(ctx, queues, id, queue::kMaildrop, "requeued",
                    [](std::string_view q) { return q == queue::kMaildrop; });
}

int hold_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id) {
    if (bad_id(id)) return 0;
    // Maildrop mail is not sanitized yet: it must not mix with queued mail.
    return move_one(ctx, queues, id, queue::kHold, "placed on hold", [](std::string_view q) {
        return q == queue::kMaildrop || q == queue::kHold;
    });
}

int release_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id) {
    if (bad_id(id)) return 0;
    return move_one(ctx, queues, id, queue::kDeferred, "released from hold",
                    [](std::string_view q) { return q != queue::kHold; });
}

namespace {

// The first queue (maildrop aside) that holds the message, for -e and -f.
bool find_expirable(Context& ctx, const std::vector<std::string>& queues, const std::string& id,
                    std::string& queue_name, std::string& path, struct stat& st) {
    for (const std::string& q : queues) {
        if (q == queue::kMaildrop || !find_queue_info(q).message_queue) continue;
        if (!message_file_ok(ctx.layout, q, id, path, st)) continue;
        queue_name = q;
        return true;
    }
    return false;
}

}  // namespace

int expire_one(Context& ctx, const std::vector<std::string>& queues, const std::string& id) {
    std::string q, path;
    struct stat st;
    if (bad_id(id) || !find_expirable(ctx, queues, id, q, path, st) || !set_expired(path, st))
        return 0;
    log::info("%s: expired", id.c_str());
    return 1;
}

int expire_release_one(Context& ctx, const std::vector<std::string>& queues,
                       const std::string& id) {
    std::string q, path;
    struct stat st;
    if (bad_id(id) || !find_expirable(ctx, queues, id, q, path, st)) return 0;
    int expired = set_expired(path, st) ? 1 : 0;
    if (expired) log::info("%s: expired", id.c_str());
    if (q == queue::kHold &&
        post_rename(path, ctx.layout.relative_path(queue::kDeferred, id)) == 0) {
        log::info("%s: released from hold", id.c_str());
        ctx.counts.released++;
    }
    return expired;
}

int operate_stream(Context& ctx, Operator op, const std::vector<std::string>& queues) {
    int found = 0;
    std::string line;
    while (std::getline(std::cin, line)) found += op(ctx, queues, line);
    return found;
}

bool message_file_ok(const queue::Layout& layout, std::string_view q, std::string_view id,
                     std::string& path, struct stat& st) {
    if (!queue::id_ok(id)) return false;
    path = layout.relative_path(q, id);
    return queue::mail_open_ok(path, st);
}

int post_rename(const std::string& from, const std::string& to) {
    if (rename(from.c_str(), to.c_str()) == 0) {
        log::debug("renamed file %s as %s", from.c_str(), to.c_str());
        return 0;
    }
    if (errno == ENOENT && access(from.c_str(), F_OK) == 0) {
        if (queue::make_parent_dirs(to) && rename(from.c_str(), to.c_str()) == 0) return 0;
    }
    if (errno != ENOENT) log::fatal("rename file %s as %s: %s", from.c_str(), to.c_str(),
                                    strerror(errno));
    return -1;
}

int post_remove(const std::string& path) {
    if (remove(path.c_str()) != 0) {
        if (errno != ENOENT) log::fatal("remove file %s: %s", path.c_str(), strerror(errno));
        return -1;
    }
    log::debug("removed file %s", path.c_str());
    return 0;
}

bool set_expired(const std::string& path, const struct stat& st) {
    if (st.st_mode & kStatExpire) return false;
    if (chmod(path.c_str(), (st.st_mode | kStatExpire) & 07777) != 0) {
        log::warn("expire file %s: cannot set permission: %s", path.c_str(), strerror(errno));
        return false;
    }
    return true;
}

}  // namespace postern::postsuper
