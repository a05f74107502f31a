// Mailbox delivery (Postfix's mailbox.c and maildir.c): mailbox_transport(_maps),
// mailbox_command(_maps), home_mailbox, mail_spool_directory — a UNIX-style mailbox,
// locked and appended to, or a Maildir when the name ends in '/'.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "local/local.h"
#include "util/mailbox/queued_message.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/daemon/ipc_client.h"
#include "util/log/log.h"
#include "util/mailbox/maildir.h"
#include "util/mailbox/mbox.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {

namespace {

// Maps named in main.cf are opened once per process.
table::Table* cached_table(const std::string& spec, std::string& error) {
    static std::map<std::string, std::unique_ptr<table::Table>> cache;
    auto it = cache.find(spec);
    if (it != cache.end()) return it->second.get();
    auto t = table::open_table(spec);
    if (!t) {
        error = t.error();
        return nullptr;
    }
    return (cache[spec] = std::move(*t)).get();
}

// nullopt: not found; "" with error set: lookup failed.
std::optional<std::string> map_lookup(const std::string& spec, const std::string& key, bool& error) {
    std::string why;
    table::Table* t = cached_table(spec, why);
    if (!t) {
        log::warn("%s", why.c_str());
        error = true;
        return std::nullopt;
    }
    auto r = t->lookup(key);
    if (r.status == table::LookupResult::Status::Error) {
        log::warn("%s: table lookup error: %s", spec.c_str(), r.error.c_str());
        error = true;
    }
    if (!r.found()) return std::nullopt;
    return r.value;
}

// Tells comsat (the "biff" UDP service on localhost) where the new mail starts, as
// Postfix's biff_notify: "user@offset" with its NUL. Best effort, no reply.
void biff_notify(const std::string& text) {
    static int port = [] {
        struct servent* se = ::getservbyname("biff", "udp");
        return se ? se->s_port : static_cast<int>(htons(512));
    }();
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    struct sockaddr_in sin {};
    sin.sin_family = AF_INET;
    sin.sin_port = static_cast<in_port_t>(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::sendto(fd.get(), text.c_str(), text.size() + 1, MSG_DONTWAIT,
                   reinterpret_cast<struct sockaddr*>(&sin), sizeof sin);
}

mailbox::CopyAttr copy_attr(const RequestContext& ctx, const MessageAttr& attr, unsigned flags) {
    mailbox::CopyAttr c;
    c.flags = flags;
    if (!(ctx.cfg.delivered_header & kHdrFile)) c.flags &= ~mailbox::kCopyDelivered;
    c.sender = attr.sender;
    c.orig_rcpt = attr.orig_rcpt;
    c.delivered = attr.delivered;
    return c;
}

DelStat deliver_mailbox_file(RequestContext& ctx, const MessageAttr& attr, const UserAttr& usr) {
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify) return sent(ctx, attr, "delivers to mailbox");
    const Settings& cfg = ctx.cfg;
    bool in_home = !cfg.home_mailbox.empty();
    std::string path = in_home ? usr.home + "/" + cfg.home_mailbox
                               : cfg.mail_spool_directory + "/" + attr.user;
    // Spool rights: a world-writable spool is written as the user, a group-writable one
    // as the user with the spool's group, anything else as root (then chown).
    uid_t spool_uid = usr.uid;
    gid_t spool_gid = usr.gid;
    struct stat st {};
    if (!in_home && ::stat(cfg.mail_spool_directory.c_str(), &st) == 0 && !(st.st_mode & S_IWOTH)) {
        if (st.st_mode & S_IWGRP) spool_gid = st.st_gid;
        else spool_uid = 0, spool_gid = 0;
    }
    mailbox::Failure why;
    mailbox::Outcome result;
    off_t end = 0;
    {
        mailbox::EffectiveIds ids(spool_uid, spool_gid, cfg.owner_uid, cfg.owner_gid);
        auto box = mailbox::LockedFile::open(path, 0600, cfg.lock, "5.2.0", why);
        if (box && mailbox::can_switch_ids() && spool_uid != usr.uid && box->st().st_size == 0 &&
            box->st().st_uid != usr.uid)
            (void)!::fchown(box->fd(), usr.uid, usr.gid);
        if (!box) {
            result = why;
        } else if (!box->is_regular()) {
            result = mailbox::Failure{"5.2.0", "destination " + path + " is not a regular file"};
        } else if (cfg.strict_mailbox_ownership && mailbox::can_switch_ids() &&
                   box->st().st_uid != usr.uid && box->st().st_size != 0) {
            log::warn("specify \"strict_mailbox_ownership = no\" to ignore mailbox ownership mismatch");
            result = mailbox::Failure{"4.2.0", "destination " + path + " is not owned by recipient"};
        } else {
            mailbox::EffectiveIds as_user(usr.uid, usr.gid, spool_uid, spool_gid);
            end = ::lseek(box->fd(), 0, SEEK_END);
            result = box->append(copy_attr(ctx, attr, mailbox::kCopyMbox), ctx.message.lines(),
                                 static_cast<uint64_t>(cfg.mailbox_size_limit), "5.2.0");
        }
    }
    if (result)
        return from_failure(ctx, attr, *result,
                            "cannot update mailbox " + path + " for user " + attr.user + ". ");
    if (cfg.biff) biff_notify(strprintf("%s@%ld", usr.logname.c_str(), static_cast<long>(end)));
    return sent(ctx, attr, "delivered to mailbox");
}

}  // namespace

DelStat deliver_maildir(RequestContext& ctx, const MessageAttr& attr, const UserAttr& usr,
                       const std::string& path) {
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify) return sent(ctx, attr, "delivers to maildir");
    unsigned flags = mailbox::kCopyToFile | mailbox::kCopyReturnPath | mailbox::kCopyOrigRcpt |
                     mailbox::kCopyDelivered;
    mailbox::MaildirDelivery where;
    where.dir = path;
    where.limit = static_cast<uint64_t>(ctx.cfg.mailbox_size_limit);
    where.hostname = ctx.cfg.myhostname;
    mailbox::Outcome result;
    {
        mailbox::EffectiveIds as_user(usr.uid, usr.gid, ctx.cfg.owner_uid, ctx.cfg.owner_gid);
        result = mailbox::deliver_maildir(where, copy_attr(ctx, attr, flags), ctx.message.lines());
    }
    if (result) return from_failure(ctx, attr, *result, "maildir delivery failed: ");
    return sent(ctx, attr, "delivered to maildir");
}

DelStat deliver_pass(RequestContext& ctx, const MessageAttr& attr, const std::string& transport) {
    std::string service = transport, nexthop = ctx.request.nexthop;
    if (size_t colon = transport.find(':'); colon != std::string::npos) {
        service = transport.substr(0, colon);
        if (colon + 1 < transport.size()) nexthop = transport.substr(colon + 1);
    }
    ipc::mail::DeliveryRequest req = ctx.request;
    req.nexthop = nexthop;
    ipc::mail::DeliveryRecipient r;
    r.address = attr.recipient, r.orig = attr.orig_rcpt, r.dsn_orcpt = attr.dsn_orcpt;
    r.notify = attr.notify, r.offset = -1;  // the other agent must not mark the queue file
    req.recipients = {r};
    std::string socket = ctx.cfg.queue_directory + "/" + ipc::mail::agent_socket(service);
    auto reply = daemon::ipc_call(socket, req.to_record(), ctx.cfg.ipc_timeout);
    std::optional<ipc::mail::DeliveryReply> parsed;
    if (reply) {
        auto p = ipc::mail::DeliveryReply::from_record(*reply);
        if (p && p->status == 0 && p->results.size() == 1) parsed = *p;
    }
    if (!parsed) {
        log::warn("%s: mail transport unavailable: %s", ctx.request.queue_id.c_str(),
                  reply ? "bad reply" : reply.error().c_str());
        return defer(ctx, attr, "4.3.0", "mail transport unavailable");
    }
    // The other agent logged its own record; only the verdict is ours to keep.
    const auto& res = parsed->results[0];
    ipc::mail::RecipientResult v = res;
    char c = res.status_class();
    int sev = c == '4' ? 2 : c == '5' ? 1 : 0;
    char old = ctx.verdict_set ? ctx.verdict.status_class() : '2';
    int old_sev = old == '4' ? 2 : old == '5' ? 1 : 0;
    if (!ctx.verdict_set || sev > old_sev) {
        v.index = ctx.verdict.index;
        ctx.verdict = v;
        ctx.verdict_set = true;
    }
    return c == '2' ? DelStat::Sent : c == '5' ? DelStat::Bounced : DelStat::Deferred;
}

bool deliver_mailbox(RequestContext& ctx, MessageAttr attr, UserAttr usr, DelStat* status) {
    attr.level++;
    if (ctx.been_here("mailbox " + attr.local)) return true;  // *status stays: nothing new
    const Settings& cfg = ctx.cfg;
    bool error = false;
    if (!cfg.mailbox_transport_maps.empty()) {
        auto t = map_lookup(cfg.mailbox_transport_maps, attr.user, error);
        if (t) return *status = deliver_pass(ctx, attr, *t), true;
        if (error) return *status = defer(ctx, attr, "4.3.0", "table lookup failure"), true;
    }
    if (!cfg.mailbox_transport.empty()) return *status = deliver_pass(ctx, attr, cfg.mailbox_transport), true;
    UserAttr pw;
    if (!lookup_user(attr.user, pw)) return false;
    usr = pw;
    if (!cfg.mailbox_command_maps.empty()) {
        auto cmd = map_lookup(cfg.mailbox_command_maps, attr.user, error);
        attr.exp_type = 0;  // mailbox_command(_maps) is the administrator's, never restricted
        if (cmd) return *status = deliver_command(ctx, attr, usr, *cmd), true;
        if (error) return *status = defer(ctx, attr, "4.3.0", "table lookup failure"), true;
    }
    if (!cfg.mailbox_command.empty()) {
        attr.exp_type = 0;
        std::string cmd = local_expand(cfg, cfg.mailbox_command, attr, usr, cfg.command_filter);
        *status = deliver_command(ctx, attr, usr, cmd);
    } else if (!cfg.home_mailbox.empty() && cfg.home_mailbox.back() == '/') {
        *status = deliver_maildir(ctx, attr, usr, usr.home + "/" + cfg.home_mailbox);
    } else if (!cfg.mail_spool_directory.empty() && cfg.mail_spool_directory.back() == '/') {
        *status = deliver_maildir(ctx, attr, usr, cfg.mail_spool_directory + attr.user + "/");
    } else {
        *status = deliver_mailbox_file(ctx, attr, usr);
    }
    return true;
}

}  // namespace postern::local
