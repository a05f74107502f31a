// postqueue -f, -s site, -i queue_id: asking for delivery now. Postfix sends -s and -i
// to its flush(8) daemon; Postern has none, so postqueue does the flush daemon's part
// itself (fresh time stamps, deferred -> incoming, a qmgr wakeup), see DIFFERENCES.md.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <utime.h>

#include <ctime>

#include "postqueue/postqueue.h"
#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"

namespace postern::postqueue {
namespace {

namespace mail = ipc::mail;

[[noreturn]] void mail_system_down() {
    fatal("Cannot flush mail queue - mail system is down");
}

// What Postfix's flush daemon does to one deferred message: fresh time stamps (so qmgr
// does not wait for the retry time) and a move to incoming. False when it is not there.
bool refresh_deferred(const queue::Layout& layout, const std::string& id) {
    std::string path = layout.path(queue::kDeferred, id);
    time_t now = time(nullptr);
    struct utimbuf tbuf{now, now};
    if (utime(path.c_str(), &tbuf) != 0) {
        if (errno != ENOENT) log::warn("update %s time stamps: %s", path.c_str(), strerror(errno));
        return false;
    }
    if (Status s = layout.move(id, queue::kDeferred, queue::kIncoming); !s) {
        if (errno != ENOENT) log::warn("%s", s.error().c_str());
        return false;
    }
    return true;
}

// The domain of a recipient as the flush service keys it: lower case; a site given as
// "[1.2.3.4]" matches the same literal.
std::string recipient_site(std::string_view internal) {
    auto parts = address::split(internal);
    return lowercase(parts.domain);
}

// True when one undelivered recipient of the deferred message goes to `site`.
bool message_has_site(const queue::Layout& layout, const std::string& id, const std::string& site) {
    auto opened = queue::open_queue_file(layout.path(queue::kDeferred, id), false);
    if (!opened || !opened->complete) return false;
    queue::QueueFileReader reader(queue::fd_source(opened->fd.get()));
    auto env = reader.read_envelope();
    if (!env) return false;
    for (const auto& r : env->recipients)
        if (!r.done && recipient_site(r.address) == site) return true;
    return false;
}

// Literal sites ([1.2.3.4]) are never in a domain list.
bool flush_domain_listed(const FlushContext& ctx, const std::string& site) {
    if (!site.empty() && site.front() == '[') return false;
    auto m = ctx.fast_flush_domains.match(site);
    if (m == rewrite::Match::Error)
        fatal("fast_flush_domains: %s", ctx.fast_flush_domains.error().c_str());
    return m == rewrite::Match::Yes;
}

}  // namespace

void flush_queue(const queue::Layout& layout) {
    const std::string& qdir = layout.queue_directory();
    const char trigger[] = {mail::kTriggerFlushDead, mail::kTriggerScanAll,
                            mail::kTriggerScanDeferred, mail::kTriggerScanIncoming};
    if (!mail::send_trigger(qdir, mail::kQmgrSocket, std::string_view(trigger, sizeof trigger)))
        mail_system_down();
    const char wakeup[] = {mail::kTriggerWakeup};
    if (!mail::send_trigger(qdir, mail::kPickupSocket, std::string_view(wakeup, 1)))
        mail_system_down();
}

void flush_site(const FlushContext& ctx, std::string_view site_arg) {
    std::string site = lowercase(site_arg);
    if (!flush_domain_listed(ctx, site))
        fatal("Flush service is not configured for destination \"%s\"",
                     std::string(site_arg).c_str());
    auto ids = ctx.layout.list(queue::kDeferred);
    if (!ids) fatal("%s", ids.error().c_str());
    bool moved = false;
    for (const std::string& id : *ids)
        if (message_has_site(ctx.layout, id, site) && refresh_deferred(ctx.layout, id))
            moved = true;
    const char scan[] = {mail::kTriggerScanIncoming};
    if (moved && !mail::send_trigger(ctx.layout.queue_directory(), mail::kQmgrSocket,
                                     std::string_view(scan, 1)))
        mail_system_down();
}

void flush_file(const queue::Layout& layout, std::string_view id) {
    const char scan[] = {mail::kTriggerScanIncoming};
    if (refresh_deferred(layout, std::string(id)) &&
        !mail::send_trigger(layout.queue_directory(), mail::kQmgrSocket,
                            std::string_view(scan, 1)))
        mail_system_down();
}

}  // namespace postern::postqueue
