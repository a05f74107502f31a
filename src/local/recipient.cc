// The delivery switch (Postfix's recipient.c, resolve.c, unknown.c): per recipient,
// loop and duplicate checks, address extension split, then aliases, .forward, mailbox,
// and what to do with users that do not exist.
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "local/local.h"
#include "util/mailbox/queued_message.h"
#include "util/base/strings.h"
#include "util/ipc/rewrite_client.h"
#include "util/log/log.h"

namespace postern::local {

namespace {

// Postfix's split_addr(): the extension of a local part, or nullopt. Never split the
// reserved names, nor owner-xxx and xxx-request when '-' is a delimiter.
std::optional<size_t> extension_at(const Settings& cfg, const std::string& local) {
    const std::string& delims = cfg.recipient_delimiter;
    if (delims.empty() || local.empty()) return std::nullopt;
    if (iequals(local, "postmaster") || iequals(local, "mailer-daemon") ||
        iequals(local, "double-bounce"))
        return std::nullopt;
    if (delims.find('-') != std::string::npos && cfg.owner_request_special) {
        if (istarts_with(local, "owner-")) return std::nullopt;
        if (local.size() > 8 && iequals(std::string_view(local).substr(local.size() - 8), "-request"))
            return std::nullopt;
    }
    size_t len = local.find_first_of(delims);
    if (len == 0 || len == std::string::npos) return std::nullopt;
    return len;
}

bool in_mydestination(const Settings& cfg, const std::string& domain) {
    if (domain.empty()) return true;
    for (const auto& d : cfg.mydestination)
        if (iequals(d, domain)) return true;
    return false;
}

DelStat deliver_switch(RequestContext& ctx, MessageAttr attr, UserAttr usr) {
    // "\user" means: no alias or .forward expansion, straight to the mailbox.
    if (!attr.recipient.empty() && attr.recipient[0] == '\\') {
        attr.recipient.erase(0, 1), attr.local.erase(0, 1), attr.user.erase(0, 1);
        DelStat st = DelStat::Sent;
        if (!deliver_mailbox(ctx, attr, usr, &st)) st = deliver_unknown(ctx, attr, usr);
        return st;
    }
    DelStat st = DelStat::Sent;
    if (deliver_alias(ctx, attr, usr, attr.local, &st)) return st;
    if (!attr.extension.empty() && deliver_alias(ctx, attr, usr, attr.user, &st)) return st;
    // Mail for a list with an owner- alias is resubmitted, so each member gets its own
    // queue file status; a plain alias to a local user is delivered directly.
    if (!attr.owner.empty() && !iequals(attr.owner, attr.user)) return deliver_indirect(ctx, attr);
    if (attr.exp_type == kExpandInclude) return deliver_indirect(ctx, attr);
    if (ctx.cfg.require_home_directory) {
        UserAttr pw;
        struct stat st_home {};
        if (lookup_user(attr.user, pw) && ::stat(pw.home.c_str(), &st_home) < 0)
            return defer(ctx, attr, "4.3.0",
                         strprintf("cannot access home directory %s: %s", pw.home.c_str(), std::strerror(errno)));
    }
    if (!deliver_dotforward(ctx, attr, usr, &st) && !deliver_mailbox(ctx, attr, usr, &st))
        st = deliver_unknown(ctx, attr, usr);
    return st;
}

}  // namespace

bool lookup_user(const std::string& name, UserAttr& out) {
    struct passwd pw {}, *result = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || !result) return false;
    out.set = true;
    out.uid = pw.pw_uid, out.gid = pw.pw_gid;
    out.home = pw.pw_dir ? pw.pw_dir : "";
    out.shell = pw.pw_shell ? pw.pw_shell : "";
    out.logname = pw.pw_name;
    return true;
}

std::string canonical_address(const Settings& cfg, std::string_view address) {
    if (address.find('@') != std::string_view::npos || address.empty()) return std::string(address);
    return std::string(address) + "@" + cfg.myorigin;
}

DelStat deliver_recipient(RequestContext& ctx, MessageAttr attr, UserAttr usr) {
    attr.level++;
    if (attr.level > 100) {
        log::warn("recipient nesting limit exceeded for %s", attr.recipient.c_str());
        return bounce(ctx, attr, "5.4.6", "recipient nesting limit exceeded");
    }
    if (ctx.been_here(strprintf("recipient %d %s", attr.level, attr.recipient.c_str())))
        return DelStat::Sent;
    if (ctx.message.delivered_to(attr.recipient))
        return bounce(ctx, attr, "5.4.6", "mail forwarding loop for " + attr.recipient);
    if (attr.delivered.empty()) attr.delivered = attr.recipient;
    attr.local = lowercase(attr.recipient);
    size_t at = attr.local.rfind('@');
    if (at == std::string::npos) {
        log::warn("no @ in recipient address: %s", attr.local.c_str());
        attr.domain.clear();
    } else {
        attr.domain = attr.local.substr(at + 1);
        attr.local.erase(at);
    }
    attr.user = attr.local;
    attr.extension.clear(), attr.delim.clear();
    if (auto len = extension_at(ctx.cfg, attr.local)) {
        std::string ext = attr.local.substr(*len + 1);
        if (ext.find('/') != std::string::npos) {
            log::warn("%s: address with illegal extension: %s", ctx.request.queue_id.c_str(), attr.local.c_str());
            attr.local.erase(*len);
        } else {
            attr.extension = ext;
            attr.delim = attr.local.substr(*len, 1);
        }
        attr.user = attr.local.substr(0, *len);
    }
    if (attr.user.empty())
        return bounce(ctx, attr, "5.1.3", "null username in \"" + attr.recipient + "\"");
    return deliver_switch(ctx, std::move(attr), std::move(usr));
}

DelStat deliver_resolve_addr(RequestContext& ctx, MessageAttr attr, UserAttr usr,
                            const std::string& address) {
    std::string canon = canonical_address(ctx.cfg, address);
    bool local;
    if (ctx.rewrite) {
        auto reply = ctx.rewrite->resolve(attr.sender, canon);
        if (!reply || (reply->flags & ipc::mail::kResolveFlagError))
            return defer(ctx, attr, "4.3.0", "address resolver failure");
        if (reply->flags & ipc::mail::kResolveFlagFail)
            return bounce(ctx, attr, "5.1.3", "bad recipient address syntax: " + reply->recipient);
        canon = reply->recipient;
        local = reply->transport == ctx.cfg.service;
    } else {
        size_t at = canon.rfind('@');
        local = in_mydestination(ctx.cfg, at == std::string::npos ? "" : lowercase(canon.substr(at + 1)));
    }
    attr.recipient = canon;
    if (local) return deliver_recipient(ctx, std::move(attr), std::move(usr));
    return deliver_indirect(ctx, attr);
}

DelStat deliver_unknown(RequestContext& ctx, MessageAttr attr, UserAttr usr) {
    if (ctx.been_here("deliver_unknown " + attr.local)) return DelStat::Sent;
    if (!ctx.cfg.fallback_transport_maps.empty()) {
        auto t = table::open_table(ctx.cfg.fallback_transport_maps);
        if (!t) return defer(ctx, attr, "4.3.0", "table lookup failure");
        auto found = (*t)->lookup(attr.user);
        if (found.found()) return deliver_pass(ctx, attr, found.value);
        if (found.status == table::LookupResult::Status::Error)
            return defer(ctx, attr, "4.3.0", "table lookup failure");
    }
    if (!ctx.cfg.fallback_transport.empty()) return deliver_pass(ctx, attr, ctx.cfg.fallback_transport);
    if (!ctx.cfg.luser_relay.empty()) {
        std::string relay = local_expand(ctx.cfg, ctx.cfg.luser_relay, attr, usr, "");
        return deliver_resolve_addr(ctx, std::move(attr), std::move(usr), relay);
    }
    if (iequals(attr.user, "mailer-daemon") || iequals(attr.user, "postmaster")) {
        log::warn("required alias not found: %s", attr.user.c_str());
        return sent(ctx, attr, "discarded");
    }
    return bounce(ctx, attr, "5.1.1", "unknown user: \"" + attr.user + "\"");
}

}  // namespace postern::local
