#include "util/daemon/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace postern::daemon {

Result<Account> lookup_account(const std::string& name, const std::string& parameter) {
    errno = 0;
    struct passwd* pw = getpwnam(name.c_str());
    if (pw == nullptr) return make_error("unknown " + parameter + " user name value: " + name);
    return Account{pw->pw_uid, pw->pw_gid, name};
}

Status become_user(const Account& account) {
    if (geteuid() != 0) return {};
    // The account's supplementary groups come along, as Postfix's chroot_uid() keeps
    // them: Debian's way of giving smtpd a root:sasl sasldb is "adduser postfix sasl".
    if (setgid(account.gid) < 0)
        return make_error("setgid(" + std::to_string(account.gid) + "): " + std::strerror(errno));
    if (initgroups(account.name.c_str(), account.gid) < 0)
        return make_error(std::string("initgroups: ") + std::strerror(errno));
    if (setuid(account.uid) < 0)
        return make_error("setuid(" + std::to_string(account.uid) + "): " + std::strerror(errno));
    return {};
}

Status enter_jail(const std::string& dir) {
    if (geteuid() != 0) return {};
    if (chroot(dir.c_str()) < 0)
        return make_error("chroot(" + dir + "): " + std::strerror(errno));
    if (chdir("/") < 0) return make_error(std::string("chdir(/): ") + std::strerror(errno));
    return {};
}

}  // namespace postern::daemon
