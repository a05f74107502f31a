// alias_maps expansion (Postfix's alias.c, token.c, include.c): the value of an alias,
// a .forward line or an :include: file is a list of destinations — addresses, |commands,
// /files and :include: files. The rights for commands and files are those of the alias
// database owner (default_privs when root owns it) or the include file owner; an
// owner-NAME alias becomes the sender of mail expanded from NAME.
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "local/local.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/mailbox/destinations.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {

namespace {

// The file behind a table, for its owner: hash:/etc/aliases -> /etc/aliases.db.
std::string table_file(const std::string& spec) {
    std::string_view type, name;
    if (!table::split_spec(spec, type, name)) return spec;
    if (type == "hash" || type == "btree") return std::string(name) + ".db";
    if (type == "inline" || type == "static" || type == "unix") return "";
    return std::string(name);
}

bool user_by_uid(uid_t uid, UserAttr& out) {
    struct passwd pw {}, *result = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0 || !result) return false;
    return lookup_user(pw.pw_name, out);
}

// Which rights a destination from this table gets: none (default_privs) for root.
bool rights_for_owner(uid_t uid, UserAttr& usr) {
    if (uid == 0) {
        usr = UserAttr{};
        return true;
    }
    return user_by_uid(uid, usr);
}

}  // namespace

bool deliver_alias(RequestContext& ctx, MessageAttr attr, UserAttr usr, const std::string& name,
                   DelStat* status) {
    attr.level++;
    // An alias that lists itself means the user of that name.
    if (!attr.exp_from.empty() && iequals(attr.exp_from, name)) return false;
    if (attr.level > 100) {
        log::warn("alias database loop for %s", name.c_str());
        *status = bounce(ctx, attr, "5.4.6", "alias database loop for " + name);
        return true;
    }
    attr.exp_from = name;
    for (size_t i = 0; i < ctx.aliases->size(); ++i) {
        table::Table* t = (*ctx.aliases)[i].get();
        auto found = t ? t->lookup(name) : table::LookupResult::fail("not open");
        if (found.status == table::LookupResult::Status::Error) {
            *status = defer(ctx, attr, "4.3.0", "alias database unavailable");
            return true;
        }
        if (!found.found()) continue;
        if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify) {
            *status = sent(ctx, attr, "aliased to " + found.value);
            return true;
        }
        attr.exp_type = kExpandAlias;
        std::string file = table_file(ctx.cfg.alias_maps[i]);
        struct stat st {};
        uid_t owner = (!file.empty() && ::stat(file.c_str(), &st) == 0) ? st.st_uid : 0;
        if (!rights_for_owner(owner, usr)) {
            log::warn("cannot find alias database owner for %s", ctx.cfg.alias_maps[i].c_str());
            *status = defer(ctx, attr, "4.3.0", "cannot find alias database owner");
            return true;
        }
        // Where problems go: owner-NAME when it exists (it also becomes the sender).
        std::string owner_name = "owner-" + name;
        table::LookupResult owner_rhs;
        if (ctx.cfg.owner_request_special)
            for (auto& ot : *ctx.aliases)
                if (ot && (owner_rhs = ot->lookup(owner_name)).found()) break;
        if (owner_rhs.found()) {
            std::string rhs = std::string(trim(owner_rhs.value));
            attr.owner = canonical_address(ctx.cfg, ctx.cfg.expand_owner_alias ? rhs : owner_name);
            attr.sender = attr.owner;
            // A list's mail is new mail from its owner: the DSN requests and the original
            // recipient of the message that reached the list do not carry over.
            attr.notify = 0, attr.dsn_orcpt.clear(), attr.orig_rcpt.clear();
        } else if (!ctx.cfg.reset_owner_alias) {
            attr.owner.clear();
        }
        int count = 0;
        *status = deliver_token_string(ctx, attr, usr, found.value, &count);
        if (count < 1) {
            log::warn("no recipient in alias lookup result for %s", name.c_str());
            *status = defer(ctx, attr, "4.3.0", "alias database unavailable");
        }
        return true;
    }
    return false;
}

DelStat deliver_token_string(RequestContext& ctx, const MessageAttr& attr, const UserAttr& usr,
                            std::string_view list, int* count) {
    DelStat worst = DelStat::Sent;
    for (const std::string& dest : mailbox::split_destinations(list)) {
        ++*count;
        DelStat st;
        if (dest[0] == '/') st = deliver_file(ctx, attr, usr, dest);
        else if (dest[0] == '|') st = deliver_command(ctx, attr, usr, dest.substr(1));
        else if (istarts_with(dest, ":include:")) st = deliver_include(ctx, attr, usr, std::string(trim(std::string_view(dest).substr(9))));
        else st = deliver_resolve_addr(ctx, attr, usr, dest);
        if (st == DelStat::Deferred || (st == DelStat::Bounced && worst == DelStat::Sent)) worst = st;
    }
    return worst;
}

DelStat deliver_include(RequestContext& ctx, MessageAttr attr, UserAttr usr, const std::string& path) {
    attr.level++;
    if (attr.level > 100) {
        log::warn(":include: nesting limit exceeded for %s", path.c_str());
        return bounce(ctx, attr, "5.4.6", ":include: nesting limit exceeded");
    }
    if (ctx.been_here(strprintf("include %ld %s", static_cast<long>(usr.set ? usr.uid : 0), path.c_str())))
        return DelStat::Sent;
    attr.exp_from = attr.local;
    const std::string config_error = "mail system configuration error";
    struct stat st {};
    if (path.empty() || path[0] != '/') {
        log::warn(":include:%s uses a relative path", path.c_str());
        return bounce(ctx, attr, "5.3.5", config_error);
    }
    if (::stat(path.c_str(), &st) < 0) {
        log::warn("unable to lookup :include: file %s: %s", path.c_str(), std::strerror(errno));
        return bounce(ctx, attr, "5.3.5", config_error);
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH)) {
        log::warn(S_ISREG(st.st_mode) ? ":include: file %s is world writable"
                                      : ":include: file %s is not a regular file", path.c_str());
        return bounce(ctx, attr, "5.3.5", config_error);
    }
    attr.exp_type = kExpandInclude;
    // From a root-owned alias, a user's include file acts with that user's rights, so
    // its owner cannot take over the default account.
    if ((!usr.set || usr.uid == 0) && st.st_uid != 0 && !rights_for_owner(st.st_uid, usr)) {
        log::warn("%s: cannot find :include: file owner username", path.c_str());
        return defer(ctx, attr, "4.3.5", config_error);
    }
    // Local addresses in an include file are resubmitted, never delivered directly.
    if (attr.owner.empty()) attr.owner = attr.recipient;
    std::ifstream in;
    {
        mailbox::EffectiveIds ids(usr.set ? usr.uid : 0, usr.set ? usr.gid : 0, ctx.cfg.owner_uid,
                                  ctx.cfg.owner_gid);
        in.open(path);
    }
    if (!in) {
        log::warn("cannot open include file %s: %s", path.c_str(), std::strerror(errno));
        return bounce(ctx, attr, "5.3.5", config_error);
    }
    DelStat worst = DelStat::Sent;
    int count = 0;
    std::string line;
    while (std::getline(in, line)) {
        std::string_view text = trim(line);
        if (text.empty() || text[0] == '#') continue;
        DelStat s = deliver_token_string(ctx, attr, usr, text, &count);
        if (s == DelStat::Deferred || (s == DelStat::Bounced && worst == DelStat::Sent)) worst = s;
    }
    return worst;
}

}  // namespace postern::local
