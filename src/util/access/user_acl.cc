// User access lists (authorized_*_users).
#include "util/access/user_acl.h"

#include <pwd.h>

#include "util/log/log.h"
#include "util/table/table.h"

namespace postern::access {

std::string login_name_of(uid_t uid) {
    if (struct passwd* pw = getpwuid(uid)) return pw->pw_name;
    return std::to_string(static_cast<unsigned long>(uid));
}

Result<bool> user_allowed(const std::vector<std::string>& acl, const std::string& user) {
    for (std::string item : acl) {
        bool negate = !item.empty() && item[0] == '!';
        if (negate) item.erase(0, 1);
        bool match = false;
        if (item.find(':') != std::string::npos) {
            auto table = table::open_table(item);
            if (!table) return make_error(table.error());
            auto r = (*table)->lookup(user);
            if (r.status == table::LookupResult::Status::Error) return make_error(r.error);
            match = r.found();
        } else {
            match = item == user;
        }
        if (match) return !negate;
    }
    return false;
}

std::optional<std::string> check_user_acl(const std::string& param_name,
                                          const std::vector<std::string>& acl, uid_t uid) {
    std::string user = login_name_of(uid);
    auto ok = user_allowed(acl, user);
    if (!ok) log::fatal("%s: %s", param_name.c_str(), ok.error().c_str());
    if (*ok) return std::nullopt;
    return user;
}

}  // namespace postern::access
