// Deliveries to /file and |command destinations (Postfix's file.c and command.c), only
// where allow_mail_to_files / allow_mail_to_commands allow them, never as root: without
// a user context they run as default_privs.
#include <sys/stat.h>

#include "local/local.h"
#include "util/mailbox/queued_message.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/mailbox/maildir.h"
#include "util/mailbox/mbox.h"
#include "util/mailbox/pipe_command.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {

namespace {

// Commands and files never run as root: default_privs stands in.
bool unprivileged_rights(const Settings& cfg, UserAttr& usr) {
    if (usr.set && usr.uid != 0) return true;
    UserAttr def;
    if (!lookup_user(cfg.default_privs, def)) {
        log::warn("unknown default_privs user name value: %s", cfg.default_privs.c_str());
        return false;
    }
    if (def.uid == 0 && mailbox::can_switch_ids()) {
        log::warn("default_privs user %s has privileged user ID", cfg.default_privs.c_str());
        return false;
    }
    // Only the ids change (Postfix's default_uid/gid): $HOME, $LOGNAME and $SHELL stay
    // those of the recipient context.
    if (usr.set) def.home = usr.home, def.shell = usr.shell, def.logname = usr.logname;
    usr = def;
    return true;
}

std::vector<std::pair<std::string, std::string>> command_env(const RequestContext& ctx,
                                                             const MessageAttr& attr,
                                                             const UserAttr& usr) {
    const std::string& filter = ctx.cfg.command_filter;
    auto f = [&](std::string v) {
        for (char& c : v)
            if (filter.find(c) == std::string::npos) c = '_';
        return v;
    };
    std::vector<std::pair<std::string, std::string>> env;
    auto add = [&](const char* name, const std::string& value) {
        if (!value.empty()) env.emplace_back(name, f(value));
    };
    add("HOME", usr.home);
    add("LOGNAME", usr.logname);
    add("USER", usr.logname);
    add("SHELL", usr.shell);
    add("LOCAL", attr.local);
    add("EXTENSION", attr.extension);
    add("DOMAIN", attr.domain);
    add("RECIPIENT", attr.recipient);
    add("SENDER", attr.sender);
    add("ORIGINAL_RECIPIENT", attr.orig_rcpt);
    add("CLIENT_ADDRESS", ctx.request.client_address);
    add("CLIENT_HELO", ctx.request.client_helo);
    add("CLIENT_HOSTNAME", ctx.request.client_name);
    add("CLIENT_PROTOCOL", ctx.request.client_protocol);
    return env;
}

}  // namespace

DelStat deliver_file(RequestContext& ctx, const MessageAttr& attr, UserAttr usr, const std::string& path) {
    if (ctx.been_here(strprintf("file %ld %s", static_cast<long>(usr.uid), path.c_str()))) return DelStat::Sent;
    if (attr.exp_type && !(ctx.cfg.allow_files & attr.exp_type))
        return bounce(ctx, attr, "5.7.1", "mail to file is restricted");
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify) return sent(ctx, attr, "delivers to file: " + path);
    if (!unprivileged_rights(ctx.cfg, usr)) return defer(ctx, attr, "4.3.0", "mail system configuration error");
    if (path.back() == '/') return deliver_maildir(ctx, attr, usr, path);
    mailbox::CopyAttr copy;
    copy.flags = mailbox::kCopyMbox;
    if (!(ctx.cfg.delivered_header & kHdrFile)) copy.flags &= ~mailbox::kCopyDelivered;
    copy.sender = attr.sender, copy.orig_rcpt = attr.orig_rcpt, copy.delivered = attr.delivered;
    mailbox::LockPolicy lock = ctx.cfg.lock;
    lock.dotlock_may_fail = true;
    mailbox::Outcome result;
    {
        mailbox::EffectiveIds as_user(usr.uid, usr.gid, ctx.cfg.owner_uid, ctx.cfg.owner_gid);
        mailbox::Failure why;
        auto file = mailbox::LockedFile::open(path, 0600, lock, "5.2.0", why);
        if (!file) {
            result = why;
        } else if (file->is_regular() && (file->st().st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
            result = mailbox::Failure{"5.7.1", "file is executable"};
        } else {
            if (!file->is_regular()) copy.flags &= ~mailbox::kCopyToFile;
            result = file->append(copy, ctx.message.lines(),
                                  static_cast<uint64_t>(ctx.cfg.mailbox_size_limit), "5.2.0");
        }
    }
    if (result) return from_failure(ctx, attr, *result, "cannot append message to file " + path + ": ");
    return sent(ctx, attr, "delivered to file: " + path);
}

DelStat deliver_command(RequestContext& ctx, const MessageAttr& attr, UserAttr usr,
                       const std::string& command) {
    if (ctx.been_here(strprintf("command %ld %s", static_cast<long>(usr.uid), command.c_str())))
        return DelStat::Sent;
    if (attr.exp_type && !(ctx.cfg.allow_commands & attr.exp_type))
        return bounce(ctx, attr, "5.7.1", "mail to command is restricted");
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify)
        return sent(ctx, attr, "delivers to command: " + command);
    if (!unprivileged_rights(ctx.cfg, usr)) return defer(ctx, attr, "4.3.0", "mail system configuration error");
    mailbox::PipeCommand cmd;
    cmd.command = command;
    cmd.env = command_env(ctx, attr, usr);
    cmd.exported = ctx.cfg.export_environment;
    cmd.set_ids = mailbox::can_switch_ids();
    cmd.uid = usr.uid, cmd.gid = usr.gid;
    cmd.shell = ctx.cfg.local_command_shell;
    cmd.time_limit = ctx.cfg.command_time_limit;
    cmd.file_limit = ctx.cfg.mailbox_size_limit;
    if (!ctx.cfg.command_execution_directory.empty())
        cmd.cwd = local_expand(ctx.cfg, ctx.cfg.command_execution_directory, attr, usr,
                               ctx.cfg.exec_dir_filter);
    mailbox::CopyAttr copy;
    copy.flags = mailbox::kCopyFrom | mailbox::kCopyReturnPath | mailbox::kCopyOrigRcpt;
    if (ctx.cfg.delivered_header & kHdrCommand) copy.flags |= mailbox::kCopyDelivered;
    copy.sender = attr.sender, copy.orig_rcpt = attr.orig_rcpt, copy.delivered = attr.delivered;
    mailbox::PipeResult r = mailbox::run_pipe_command(cmd, copy, ctx.message.lines());
    switch (r.status) {
        case mailbox::PipeStatus::Ok: return sent(ctx, attr, "delivered to command: " + command);
        case mailbox::PipeStatus::Bounce: return bounce(ctx, attr, r.dsn, r.reason);
        case mailbox::PipeStatus::Defer:
        case mailbox::PipeStatus::Corrupt: break;
    }
    return defer(ctx, attr, r.dsn.empty() ? "4.3.0" : r.dsn, r.reason);
}

}  // namespace postern::local
