#include "util/mailbox/user_ids.h"

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/base/strings.h"

namespace postern::mailbox {

bool can_switch_ids() { return ::getuid() == 0; }

Status set_eugid(uid_t uid, gid_t gid) {
    if (!can_switch_ids()) return Status::success();
    if (::geteuid() != 0 && ::seteuid(0) < 0)
        return make_error(strprintf("seteuid 0: %s", std::strerror(errno)));
    if (::setegid(gid) < 0)
        return make_error(strprintf("setegid %ld: %s", static_cast<long>(gid), std::strerror(errno)));
    if (::setgroups(1, &gid) < 0)
        return make_error(strprintf("setgroups %ld: %s", static_cast<long>(gid), std::strerror(errno)));
    if (uid != 0 && ::seteuid(uid) < 0)
        return make_error(strprintf("seteuid %ld: %s", static_cast<long>(uid), std::strerror(errno)));
    return Status::success();
}

EffectiveIds::EffectiveIds(uid_t uid, gid_t gid, uid_t back_uid, gid_t back_gid)
    : back_uid_(back_uid), back_gid_(back_gid), status_(set_eugid(uid, gid)) {}

EffectiveIds::~EffectiveIds() { (void)set_eugid(back_uid_, back_gid_); }

}  // namespace postern::mailbox
