// Privilege changes of a daemon: chroot into a directory and become an unprivileged
// account. A non-root process (a sandbox instance) keeps its own uid and skips chroot,
// since it could not do either.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/base/result.h"

namespace postern::daemon {

struct Account {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name;
};

// getpwnam(); the error names the parameter as Postfix does:
// "unknown mail_owner user name value: x".
Result<Account> lookup_account(const std::string& name, const std::string& parameter);

// Root: setgid, initgroups (the account's supplementary groups) and setuid to
// `account`. Non-root: nothing.
Status become_user(const Account& account);

// Root: chroot(dir) and chdir("/"). Non-root: nothing.
Status enter_jail(const std::string& dir);

}  // namespace postern::daemon
