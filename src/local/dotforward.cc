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

// Reads the file as the user; ENOENT gives nullopt (try the next name).
std::optional<std::string> read_forward_file(const Settings& cfg, const UserAttr& usr,
                                             const std::string& path, bool& failed) {
    mailbox::EffectiveIds as_user(usr.uid, usr.gid, cfg.owner_uid, cfg.owner_gid);
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT) {
            log::warn("cannot open %s: %s", path.c_str(), std::strerror(errno));
            failed = errno != EACCES && errno != ELOOP && errno != ENOTDIR;
        }
        return std::nullopt;
    }
    UniqueFd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (st.st_uid != 0 && st.st_uid != usr.uid) {
        log::warn("file %s has bad owner uid %ld", path.c_str(), static_cast<long>(st.st_uid));
        return std::nullopt;
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    return text;
}

}  // namespace

bool deliver_dotforward(RequestContext& ctx, MessageAttr attr, UserAttr usr, DelStat* status) {
    attr.level++;
    if (ctx.cfg.forward_path.empty()) return false;
    if (ctx.been_here("forward " + attr.local)) return false;
    UserAttr pw;
    if (!lookup_user(attr.user, pw)) return false;
    // Never act as root on a user's behalf (root's own .forward is read as default_privs).
    usr = pw;
    attr.exp_type = kExpandForward;
    attr.owner = attr.user;
    std::string paths = local_expand(ctx.cfg, ctx.cfg.forward_path, attr, usr, ctx.cfg.forward_filter);
    for (auto path_view : split_tokens(paths, ", \t\r\n")) {
        std::string path(path_view);
        if (ctx.been_here("forward_path " + path)) continue;
        bool failed = false;
        auto text = read_forward_file(ctx.cfg, usr, path, failed);
        if (failed) {
            *status = defer(ctx, attr, "4.3.0", "mail system configuration error");
            return true;
        }
        if (!text) continue;
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
    return false;
}

}  // namespace postern::local
