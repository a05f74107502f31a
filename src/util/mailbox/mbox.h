// A UNIX-style mailbox (or any file local(8) appends to), opened and locked for one
// delivery as Postfix's mbox_open(): dotlock first (PATH.lock, created exclusively, stale
// locks removed after stale_lock_time), then the file (never through a symlink, never a
// file with several hard links), then fcntl() and/or flock() locks, each tried
// deliver_lock_attempts times, deliver_lock_delay apart. The lock is released when the
// object goes away. append() writes through mail_copy and makes the result durable, or
// truncates the file back to where it was.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/mailbox/mail_copy.h"

namespace postern::mailbox {

enum LockMethod : unsigned {
    kLockFlock = 1u << 0,
    kLockFcntl = 1u << 1,
    kLockDotlock = 1u << 2,
};

// "fcntl, dotlock" (mailbox_delivery_lock) -> a LockMethod mask. The error names the
// parameter as Postfix does: "invalid mailbox_delivery_lock value: foo".
Result<unsigned> parse_lock_methods(const std::vector<std::string>& names,
                                    std::string_view parameter = "mailbox_delivery_lock");

struct LockPolicy {
    unsigned methods = kLockFcntl | kLockDotlock;
    int attempts = 20;          // deliver_lock_attempts
    long delay_ms = 1000;       // deliver_lock_delay
    long stale_seconds = 500;   // stale_lock_time
    // Files named in aliases/.forward: a dotlock that cannot be made (no write access to
    // the directory) is not an error there (Postfix's MBOX_DOT_LOCK_MAY_FAIL).
    bool dotlock_may_fail = false;
};

class LockedFile {
public:
    // Opens `path` for appending (creating it with `mode`), then locks it. On failure
    // `why` says so in Postfix's words ("unable to lock for exclusive access: ...") with
    // the status from mbox_dsn(errno, def_dsn).
    static std::unique_ptr<LockedFile> open(const std::string& path, int mode,
                                            const LockPolicy& policy,
                                            std::string_view def_dsn, Failure& why);
    ~LockedFile();
    LockedFile(const LockedFile&) = delete;
    LockedFile& operator=(const LockedFile&) = delete;

    int fd() const { return fd_.get(); }
    const struct stat& st() const { return st_; }
    bool is_regular() const { return S_ISREG(st_.st_mode); }

    // Appends the message at the end of the file (size-limited by `limit`, 0 = none),
    // fsyncs a regular file, and on any failure truncates it back to its old length.
    Outcome append(const CopyAttr& attr, const LineReader& next, uint64_t limit,
                   std::string_view def_dsn);

private:
    LockedFile() = default;
    UniqueFd fd_;
    struct stat st_ {};
    std::string dotlock_;  // removed in the destructor when set
};

// Exclusive dotlock PATH.lock (exposed for tests). Ok(true): locked; Ok(false): the lock
// could not be created for a reason other than "someone holds it" and may_fail allows
// that. Errors give the errno in `err`.
Result<bool> dotlock_acquire(const std::string& path, const LockPolicy& policy, int& err);
void dotlock_release(const std::string& path);

}  // namespace postern::mailbox
