// ~/.forward files (Postfix's dotforward.c): the first file of forward_path that exists
// lists where the user's mail goes, read and delivered with the user's rights. A user
// named in their own .forward gets the mail in their mailbox; other addresses are
// resubmitted (the user becomes the "owner" of the expansion).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "local/local.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {

namespace {

// The first forward_path entry that expands fully and exists (lstat as the user).
std::optional<std::string> find_forward_file(const RequestContext& ctx, const MessageAttr& attr,
                                             const UserAttr& usr, struct stat& st) {
    mailbox::EffectiveIds as_user(usr.uid, usr.gid, ctx.cfg.owner_uid, ctx.cfg.owner_gid);
    for (auto entry : split_tokens(ctx.cfg.forward_path, ", \t\r\n")) {
        bool undefined = false;
        std::string path = local_expand(ctx.cfg, std::string(entry), attr, usr, ctx.cfg.forward_filter,
                                        &undefined);
        if (!undefined && ::lstat(path.c_str(), &st) == 0) return path;
    }
    return std::nullopt;
}

// Reads the file as the user, after Postfix's checks: a regular file, owned by the
// user (or root), not world-writable. Anything else is ignored with a warning.
std::optional<std::string> read_forward_file(const Settings& cfg, const UserAttr& usr,
                                             const std::string& path, const struct stat& st) {
    if (!S_ISREG(st.st_mode)) {
        log::warn("file %s is not a regular file", path.c_str());
        return std::nullopt;
    }
    if (st.st_uid != 0 && st.st_uid != usr.uid) {
        log::warn("file %s has bad owner uid %ld", path.c_str(), static_cast<long>(st.st_uid));
        return std::nullopt;
    }
    if (st.st_mode & S_IWOTH) {
        log::warn("file %s is world writable", path.c_str());
        return std::nullopt;
    }
    mailbox::EffectiveIds as_user(usr.uid, usr.gid, cfg.owner_uid, cfg.owner_gid);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        log::warn("cannot open file %s: %s", path.c_str(), std::strerror(errno));
        return std::nullopt;
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    return text;
}

}  // namespace

bool deliver_dotforward(RequestContext& ctx, MessageAttr attr, UserAttr usr, DelStat* status) {
    attr.level++;
    if (ctx.cfg.forward_path.empty()) return false;
    UserAttr pw;
    if (!lookup_user(attr.user, pw)) return false;
    // The recipient's own rights, never the file owner's (root's become default_privs
    // in the file and command deliveries).
    usr = pw;
    attr.exp_type = kExpandForward;
    // Local addresses in the file are resubmitted; the user's own name means the mailbox.
    attr.owner = attr.user;
    struct stat st {};
    auto path = find_forward_file(ctx, attr, usr, st);
    if (!path) return false;
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify) {
        *status = sent(ctx, attr, "forward via file: " + *path);
        return true;
    }
    // A user who lists herself comes back here while the file is being expanded.
    if (ctx.been_here("forward " + *path)) return false;
    attr.exp_from = attr.local;
    auto text = read_forward_file(ctx.cfg, usr, *path, st);
    if (!text) return false;
    DelStat worst = DelStat::Sent;
    int count = 0;
    for (auto line : split_tokens(*text, "\n")) {
        std::string_view t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        DelStat s = deliver_token_string(ctx, attr, usr, t, &count);
        if (s == DelStat::Deferred || (s == DelStat::Bounced && worst == DelStat::Sent)) worst = s;
    }
    if (count == 0) return false;  // an empty .forward: deliver to the mailbox
    *status = worst;
    return true;
}

}  // namespace postern::local
