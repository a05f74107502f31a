// One maildrop file: checks, the cleanup conversation, and what happens to the file.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pickup/pickup.h"
#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/ipc/cleanup_client.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"

namespace postern::pickup {
namespace {

using ipc::mail::CleanupEnvelope;
using ipc::mail::CleanupRecipient;

constexpr long kDay = 86400, kHour = 3600;

struct Info {
    std::string id;  // the maildrop file's name
    std::string path;
    struct stat st{};
    bool requeued = false;  // put back by "postsuper -r": owned by mail_owner, not world-readable
};

// The attributes a user's maildrop file may carry (postdrop let only these through; a
// file that got here another way must not smuggle client names or other state).
bool user_attribute(const std::string& name) {
    return name == queue::attr::kRewriteContext || name == queue::attr::kEncoding ||
           name == "trace_flags";
}

struct Parsed {
    CleanupEnvelope env;
};

// Pass one: the whole file must parse; collects the envelope for cleanup.
Result<Parsed> read_whole(const Info& info, int fd) {
    queue::QueueFileReader reader(queue::fd_source(fd));
    auto env = reader.read_envelope();
    if (!env) return make_error(env.error());
    auto extracted = reader.read_extracted();  // reads past the content
    if (!extracted) return make_error(extracted.error());
    Parsed p;
    CleanupEnvelope& e = p.env;
    e.sender = env->sender;
    e.fullname = env->fullname;
    e.arrival_sec = env->arrival_sec ? env->arrival_sec : info.st.st_mtime;
    e.arrival_usec = env->arrival_sec ? env->arrival_usec : 0;
    for (const auto& [name, value] : env->attributes) {
        long n = 0;
        if (name == queue::attr::kEnvid) e.envid = value;
        else if (name == queue::attr::kRet && parse_long(value, n)) e.ret = n;
        else if (name == "submit_uid") continue;  // ours to say, never the file's
        else if (info.requeued || user_attribute(name)) e.attributes.emplace_back(name, value);
    }
    // Who submitted it: cleanup names the uid in its Received: header, as Postfix's pickup.
    e.attributes.emplace_back("submit_uid", std::to_string(info.st.st_uid));
    for (const queue::Recipient& r : env->recipients) {
        if (r.done) continue;  // delivered before "postsuper -r"
        e.recipients.push_back({r.address, r.original, r.dsn_orcpt, r.dsn_notify});
    }
    // sendmail -t: the header recipients follow the message, each after its A records.
    CleanupRecipient pending;
    for (const auto& [type, data] : extracted->records) {
        if (type == queue::rec::kAttr) {
            size_t eq = data.find('=');
            std::string name = data.substr(0, eq), value = eq == std::string::npos ? "" : data.substr(eq + 1);
            long n = 0;
            if (name == queue::attr::kDsnNotify && parse_long(value, n)) pending.notify = n;
            if (name == queue::attr::kDsnOrcpt) pending.dsn_orcpt = value;
        } else if (type == queue::rec::kRcpt) {
            pending.address = data;
            e.recipients.push_back(pending);
            pending = CleanupRecipient{};
        }
    }
    return p;
}

// Pass two: the message lines.
Status send_content(int fd, ipc::mail::CleanupClient& cleanup) {
    queue::QueueFileReader reader(queue::fd_source(fd));
    auto env = reader.read_envelope();
    if (!env) return make_error(env.error());
    // cleanup writes the Received: header for a local submission (kCleanupLocalSubmit),
    // with the submitter's uid from the submit_uid attribute.
    std::string text;
    bool first = true;
    for (;;) {
        auto line = reader.next_line();
        if (!line) return make_error(line.error());
        if (!*line) break;
        // Content that starts with white space would continue our Received: header.
        if (first && !(*line)->empty() && ((**line)[0] == ' ' || (**line)[0] == '\t')) text += '\n';
        first = false;
        text += **line;
        text += '\n';
        if (text.size() >= 64 * 1024) {
            if (Status st = cleanup.content(text); !st) return st;
            text.clear();
        }
    }
    return cleanup.content(text);
}

void warn_time_warp(const Info& info) {
    time_t now = time(nullptr);
    if (info.st.st_mtime > now + 2 * kHour)
        log::warn("%s: message %s dated %ld seconds into the future", info.id.c_str(), info.path.c_str(),
                  static_cast<long>(info.st.st_mtime - now));
    else if (info.st.st_mtime < now - kDay)
        log::warn("%s: message %s has been queued for %d days", info.id.c_str(), info.path.c_str(),
                  static_cast<int>((now - info.st.st_mtime) / kDay));
}

Outcome quarantine(const queue::Layout& layout, const Info& info, const std::string& why) {
    log::warn("uid=%ld: malformed queue file %s: %s", static_cast<long>(info.st.st_uid),
              info.path.c_str(), why.c_str());
    Status s = layout.move(info.id, queue::kMaildrop, queue::kCorrupt);
    if (!s) {
        log::warn("%s: %s", info.id.c_str(), s.error().c_str());
        return Outcome::Kept;
    }
    log::warn("%s: moved to the corrupt queue", info.id.c_str());
    return Outcome::Quarantined;
}

// The conversation with cleanup for a file that parsed.
Outcome submit(const Settings& s, const Info& info, const Parsed& parsed, int fd) {
    ipc::mail::CleanupClient cleanup(s.queue_directory, s.ipc_timeout);
    auto queue_id = cleanup.open(s.cleanup_flags);
    if (!queue_id) {
        log::warn("%s: %s", info.path.c_str(), queue_id.error().c_str());
        return Outcome::CleanupDown;
    }
    if (Status st = cleanup.envelope(parsed.env); !st) {
        log::warn("%s: %s", info.path.c_str(), st.error().c_str());
        return Outcome::Kept;
    }
    // info_log_address_format = external (Postfix's default): quoted where needed.
    std::string sender = parsed.env.sender.empty() ? "" : address::to_external(parsed.env.sender);
    if (info.requeued)
        log::info("%s: uid=%d from=<%s> orig_id=%s", queue_id->c_str(), static_cast<int>(info.st.st_uid),
                  sender.c_str(), info.id.c_str());
    else
        log::info("%s: uid=%d from=<%s>", queue_id->c_str(), static_cast<int>(info.st.st_uid), sender.c_str());
    if (Status st = send_content(fd, cleanup); !st) {
        log::warn("%s: %s", info.path.c_str(), st.error().c_str());
        return Outcome::Kept;
    }
    auto result = cleanup.finish();
    if (!result) {
        log::warn("%s: %s", info.path.c_str(), result.error().c_str());
        return Outcome::Kept;
    }
    if (result->status == 0) return Outcome::Removed;
    // cleanup logged its reason already; without one, say what went wrong.
    if (result->reason.empty())
        log::warn("%s: error writing %s: %s", info.path.c_str(), queue_id->c_str(),
                  ipc::mail::cleanup_status_text(result->status).c_str());
    using namespace ipc::mail;
    return (result->status & (kCleanupStatBad | kCleanupStatRcpt)) ? Outcome::Removed : Outcome::Kept;
}

}  // namespace

Outcome pickup_file(const Settings& s, const queue::Layout& layout, const std::string& id) {
    Info info;
    info.id = id;
    info.path = layout.relative_path(queue::kMaildrop, id);
    if (lstat(info.path.c_str(), &info.st) != 0) {
        if (errno != ENOENT) log::warn("%s: %s", info.path.c_str(), strerror(errno));
        return Outcome::Skipped;
    }
    if (!S_ISREG(info.st.st_mode)) {
        log::warn("%s: uid %ld: not a regular file", info.path.c_str(), static_cast<long>(info.st.st_uid));
        return Outcome::Skipped;
    }
    if ((info.st.st_mode & S_IRWXU) != queue::kModeReady) return Outcome::Skipped;  // still being written
    if (info.st.st_nlink > 1) {
        log::warn("%s: uid %ld: file has %lu links", info.path.c_str(), static_cast<long>(info.st.st_uid),
                  static_cast<unsigned long>(info.st.st_nlink));
        return Outcome::Skipped;
    }
    info.requeued = info.st.st_uid == s.mail_owner && (info.st.st_mode & S_IROTH) == 0;
    auto opened = queue::open_queue_file(info.path, false);
    if (!opened) {
        log::warn("open input file %s: %s", info.path.c_str(), opened.error().c_str());
        return errno == ENOENT ? Outcome::Skipped : Outcome::Kept;
    }
    warn_time_warp(info);
    auto parsed = read_whole(info, opened->fd.get());
    if (!parsed) return quarantine(layout, info, parsed.error());
    Outcome out = submit(s, info, *parsed, opened->fd.get());
    if (out == Outcome::Removed && unlink(info.path.c_str()) != 0 && errno != ENOENT)
        log::warn("remove %s: %s", info.path.c_str(), strerror(errno));
    return out;
}

}  // namespace postern::pickup
