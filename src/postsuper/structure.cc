// The walk over whole queue directories (Postfix's super()): removes what does not
// belong (directories, non-files, stale temporary files), renames files whose name does
// not match their inode (after a restore from backup), moves files to the hash
// subdirectory the current hash_queue_* settings want, and does the "ALL" operations.
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <ctime>
#include <memory>

#include "postsuper/postsuper.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"

namespace postern::postsuper {
namespace {

// A name given to a file renamed to match its inode; it must not pass id_ok() so that
// qmgr ignores it should someone run this on a live system.
constexpr std::string_view kFixSuffix = "#FIX";

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

// Directory entries are read first: the walk renames files while it goes.
std::vector<std::string> entries_of(const std::string& dir) {
    std::vector<std::string> names;
    std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
    if (!d) {
        if (errno != ENOENT) log::fatal("open directory %s: %s", dir.c_str(), strerror(errno));
        return names;
    }
    while (struct dirent* e = readdir(d.get())) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    return names;
}

bool ready(const struct stat& st) { return (st.st_mode & S_IRWXU) == queue::kModeReady; }

// A temporary file left by a crash: untouched for a day. The inode change time counts
// too (Debian's Postfix 3.7 keeps a file whose mtime alone was set back): a file that
// was just renamed or restored is not stale, whatever its mtime says.
bool stale(const struct stat& st) {
    time_t now = time(nullptr);
    return now > st.st_mtime + kMaxTempAge && now > st.st_ctime + kMaxTempAge;
}

// The queue ID made from the file's time digits and its actual inode number; the same
// every time, so that an interrupted rename can be finished by running again.
std::string id_for_inode(const std::string& id, ino_t inode) {
    size_t sep = id.rfind('z');
    bool long_form = queue::parse_id(id) && queue::parse_id(id)->long_form;
    std::string prefix = long_form ? id.substr(0, sep + 1) : id.substr(0, 5);
    return prefix + queue::encode_inode(static_cast<uint64_t>(inode), long_form);
}

// Renames the logs first and the message file last (each with the #FIX suffix), so
// that a second pass knows the message and its logs are done.
void fix_queue_id(Context& ctx, const std::string& path, std::string_view q,
                  const std::string& id, ino_t inode) {
    std::string new_id = id_for_inode(id, inode);
    for (std::string_view log_queue : kLogQueues)
        post_rename(ctx.layout.relative_path(log_queue, id),
                    ctx.layout.relative_path(log_queue, new_id) + std::string(kFixSuffix));
    post_rename(path, ctx.layout.relative_path(q, new_id) + std::string(kFixSuffix));
}

struct Walk {
    Context& ctx;
    const QueueInfo& info;
    std::string queue;
    int wanted_depth;
    unsigned& action;
};

// Mass renames of ALL; true when the file was dealt with.
bool mass_operation(Walk& w, const std::string& path, const std::string& name,
                    const struct stat& st) {
    Counters& c = w.ctx.counts;
    const queue::Layout& layout = w.ctx.layout;
    bool mq = w.info.message_queue, maildrop = w.queue == queue::kMaildrop;
    bool hold = w.queue == queue::kHold;
    if ((w.action & kRequeueAll) && mq && !maildrop) {
        if (post_rename(path, layout.relative_path(queue::kMaildrop, name)) == 0) c.requeued++;
        return true;
    }
    if ((w.action & kHoldAll) && mq && !maildrop && !hold) {
        if (post_rename(path, layout.relative_path(queue::kHold, name)) == 0) c.held++;
        return true;
    }
    if ((w.action & kReleaseAll) && hold) {
        if (post_rename(path, layout.relative_path(queue::kDeferred, name)) == 0) c.released++;
        return true;
    }
    if ((w.action & (kExpireAll | kExpireReleaseAll)) && mq && !maildrop) {
        if (set_expired(path, st)) c.expired++;
        if ((w.action & kExpireReleaseAll) && hold) {
            if (post_rename(path, layout.relative_path(queue::kDeferred, name)) == 0) c.released++;
            return true;
        }
    }
    return false;
}

// "ID#FIX" left by the first pass: strip the suffix, file it where it belongs. False when
// no more work on this file is possible.
bool finish_fix(Walk& w, std::string& path, std::string& name, const struct stat& st) {
    name.resize(name.size() - kFixSuffix.size());
    if (!queue::id_ok(name)) {
        log::warn("bogus file name: %s", path.c_str());
        return false;
    }
    if (w.info.message_queue) {
        auto parsed = queue::parse_id(name);
        if (!parsed) {
            log::warn("bogus file name: %s", path.c_str());
            return false;
        }
        if (parsed->inode != static_cast<uint64_t>(st.st_ino)) {
            log::warn("name/inode mismatch: %s", path.c_str());
            return false;
        }
    }
    std::string wanted = w.ctx.layout.relative_path(w.queue, name);
    if (post_rename(path, wanted) != 0) return false;
    if (w.info.message_queue) w.ctx.counts.inode_fixed++;
    path = wanted;
    return true;
}

void visit_file(Walk& w, std::string path, std::string name) {
    Counters& c = w.ctx.counts;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {  // an alien directory
        if (rmdir(path.c_str()) != 0 && errno != ENOENT)
            log::warn("remove subdirectory %s: %s", path.c_str(), strerror(errno));
        return;
    }
    if (w.action & kDeleteAll) {
        if (post_remove(path) == 0 && w.info.message_queue && ready(st)) c.deleted++;
        return;
    }
    if (!S_ISREG(st.st_mode) ||
        ((w.action & kPurge) && w.info.message_queue && !ready(st) && stale(st))) {
        post_remove(path);
        return;
    }
    if ((w.action & kStruct) && name.ends_with(kFixSuffix) && !finish_fix(w, path, name, st))
        return;
    if (!queue::id_ok(name)) {
        log::warn("bogus file name: %s", path.c_str());
        return;
    }
    if ((w.action & kStruct) && w.info.message_queue) {
        auto parsed = queue::parse_id(name);
        if (!parsed) {
            log::warn("bogus file name: %s", path.c_str());
            return;
        }
        if (parsed->inode != static_cast<uint64_t>(st.st_ino)) {
            c.inode_mismatch++;
            w.action &= ~kAfterInodeFix;
            fix_queue_id(w.ctx, path, w.queue, name, st.st_ino);
            return;
        }
    }
    if (mass_operation(w, path, name, st)) return;
    if (w.action & kStruct) {
        std::string wanted = w.ctx.layout.relative_path(w.queue, name);
        if (wanted != path) {
            c.position_mismatch++;
            post_rename(path, wanted);
        }
    }
}

void walk_dir(Walk& w, const std::string& dir, int depth) {
    for (const std::string& name : entries_of(dir)) {
        std::string path = dir + "/" + name;
        if (name.size() == 1 && w.info.recurse) {
            walk_dir(w, path, depth + 1);
            // Subdirectories deeper than the hashing wants are emptied by now.
            if (depth + 1 > w.wanted_depth && rmdir(path.c_str()) != 0 && errno != ENOENT)
                log::warn("remove directory %s: %s", path.c_str(), strerror(errno));
            continue;
        }
        visit_file(w, path, name);
    }
}

}  // namespace

const QueueInfo& find_queue_info(std::string_view name) {
    static const QueueInfo table[] = {
        {queue::kMaildrop, true, false}, {queue::kIncoming, true, true},
        {queue::kActive, true, true},    {queue::kDeferred, true, true},
        {queue::kHold, true, true},      {queue::kTrace, false, true},
        {queue::kDefer, false, true},    {queue::kBounce, false, true},
        {queue::kFlush, false, true},
    };
    for (const QueueInfo& q : table)
        if (q.name == name) return q;
    log::fatal("invalid directory name: %s", std::string(name).c_str());
}

void super(Context& ctx, const std::vector<std::string>& queues, unsigned& action) {
    for (const std::string& q : queues) {
        log::debug("queue: %s", q.c_str());
        const QueueInfo& info = find_queue_info(q);
        int wanted = ctx.layout.is_hashed(q) ? ctx.layout.hash_depth() : 0;
        if (wanted > 0 && !info.recurse) log::fatal("%s queue must not be hashed", q.c_str());
        Walk w{ctx, info, q, wanted, action};
        walk_dir(w, q, 0);  // relative: messages name files as Postfix does
    }
}

}  // namespace postern::postsuper
