// Acting as a mail recipient (Postfix's set_eugid): a root process switches its effective
// uid/gid (and its group list) to the user for the duration of one delivery and back to
// its own identity afterwards, so that files are created and quotas charged as that user.
// A non-root process (sandbox instance) cannot and need not change anything.
#pragma once

#include <sys/types.h>

#include "util/base/result.h"

namespace postern::mailbox {

// Sets the effective ids (via euid 0 when not already). No-op when the real uid is not 0.
Status set_eugid(uid_t uid, gid_t gid);

// Becomes uid/gid for a scope and returns to `back_uid`/`back_gid` at its end.
class EffectiveIds {
public:
    EffectiveIds(uid_t uid, gid_t gid, uid_t back_uid, gid_t back_gid);
    ~EffectiveIds();
    EffectiveIds(const EffectiveIds&) = delete;
    EffectiveIds& operator=(const EffectiveIds&) = delete;
    const Status& status() const { return status_; }

private:
    uid_t back_uid_;
    gid_t back_gid_;
    Status status_;
};

// True when this process may change ids (real uid 0).
bool can_switch_ids();

}  // namespace postern::mailbox
