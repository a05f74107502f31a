// Postfix's user_acl: the authorized_submit_users / authorized_mailq_users /
// authorized_flush_users lists. Each element is a login name, "!name", or a lookup table
// ("static:anyone", "hash:/etc/postfix/users"; a table matches when it finds the name);
// the first match decides, a negated match denies, no match denies.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "util/base/result.h"

namespace postern::access {

// The login name for uid, or the number as text when it has none (Postfix's uid_name).
std::string login_name_of(uid_t uid);

// Ok(true) when `user` may; an error when a table cannot be read.
Result<bool> user_allowed(const std::vector<std::string>& acl, const std::string& user);

// Postfix's check_user_acl_byuid: nullopt when uid may, else the name to report in
// "User NAME(UID) is not allowed to ...". A table error is fatal (log::fatal).
std::optional<std::string> check_user_acl(const std::string& param_name,
                                          const std::vector<std::string>& acl, uid_t uid);

}  // namespace postern::access
