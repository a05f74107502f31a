#include "util/mailbox/mbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "util/base/strings.h"

namespace postern::mailbox {

Result<unsigned> parse_lock_methods(const std::vector<std::string>& names,
                                    std::string_view parameter) {
    unsigned mask = 0;
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : " ") + n;
    for (const auto& n : names) {
        if (iequals(n, "fcntl")) mask |= kLockFcntl;
        else if (iequals(n, "flock")) mask |= kLockFlock;
        else if (iequals(n, "dotlock")) mask |= kLockDotlock;
        else
            return make_error(strprintf("unknown %.*s value \"%s\" in \"%s\"",
                                        static_cast<int>(parameter.size()), parameter.data(),
                                        n.c_str(), all.c_str()));
    }
    return mask;
}

namespace {

void pause_ms(long ms) {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// One kernel lock, tried without blocking `attempts` times.
bool kernel_lock(int fd, LockMethod method, const LockPolicy& policy) {
    for (int i = 0; i < policy.attempts; ++i) {
        int rc;
        if (method == kLockFcntl) {
            struct flock fl {};
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            rc = ::fcntl(fd, F_SETLK, &fl);
        } else {
            rc = ::flock(fd, LOCK_EX | LOCK_NB);
        }
        if (rc == 0) return true;
        if (errno != EAGAIN && errno != EACCES && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (i + 1 < policy.attempts) pause_ms(policy.delay_ms);
    }
    errno = EAGAIN;
    return false;
}

// Opens for appending without following a symlink; a fresh file is made with O_EXCL so
// that a concurrent attacker cannot slip a link in between (Postfix's safe_open).
int open_append(const std::string& path, int mode, int& err) {
    for (int tries = 0; tries < 3; ++tries) {
        int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT) {
            err = errno;
            return fd;
        }
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    mode);
        if (fd >= 0 || errno != EEXIST) {
            err = errno;
            return fd;
        }
    }
    err = EAGAIN;
    return -1;
}

}  // namespace

Result<bool> dotlock_acquire(const std::string& path, const LockPolicy& policy, int& err) {
    std::string lock = path + ".lock";
    for (int i = 0; i < policy.attempts; ++i) {
        int fd = ::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
        if (fd >= 0) {
            ::close(fd);
            return true;
        }
        err = errno;
        if (err != EEXIST) {
            if (policy.dotlock_may_fail) return false;
            return make_error(strprintf("unable to create lock file %s: %s", lock.c_str(),
                                        std::strerror(err)));
        }
        // A lock older than stale_lock_time belongs to a crashed delivery.
        struct stat st {};
        if (::stat(lock.c_str(), &st) == 0 && time(nullptr) > st.st_mtime + policy.stale_seconds) {
            ::unlink(lock.c_str());
            continue;
        }
        if (i + 1 < policy.attempts) pause_ms(policy.delay_ms);
    }
    err = EAGAIN;
    return make_error(strprintf("unable to create lock file %s: %s", lock.c_str(),
                                std::strerror(EEXIST)));
}

void dotlock_release(const std::string& path) { ::unlink((path + ".lock").c_str()); }

std::unique_ptr<LockedFile> LockedFile::open(const std::string& path, int mode,
                                             const LockPolicy& policy,
                                             std::string_view def_dsn, Failure& why) {
    std::unique_ptr<LockedFile> box(new LockedFile());
    int err = 0;
    if (policy.methods & kLockDotlock) {
        auto locked = dotlock_acquire(path, policy, err);
        if (!locked) {
            why = Failure{mbox_dsn(err, def_dsn), locked.error()};
            return nullptr;
        }
        if (*locked) box->dotlock_ = path;
    }
    box->fd_.reset(open_append(path, mode, err));
    if (!box->fd_) {
        why = Failure{mbox_dsn(err, def_dsn), strprintf("cannot open file: %s", std::strerror(err))};
        return nullptr;
    }
    if (::fstat(box->fd_.get(), &box->st_) < 0) {
        err = errno;
        why = Failure{mbox_dsn(err, def_dsn), strprintf("cannot open file: %s", std::strerror(err))};
        return nullptr;
    }
    if (S_ISREG(box->st_.st_mode) && box->st_.st_nlink > 1) {
        why = Failure{std::string(def_dsn),
                      strprintf("cannot open file: file has %lu hard links",
                                static_cast<unsigned long>(box->st_.st_nlink))};
        return nullptr;
    }
    for (LockMethod m : {kLockFcntl, kLockFlock}) {
        if (!(policy.methods & m) || !S_ISREG(box->st_.st_mode)) continue;
        if (!kernel_lock(box->fd_.get(), m, policy)) {
            err = errno;
            why = Failure{mbox_dsn(err, "4.2.0"),
                          strprintf("unable to lock for exclusive access: %s", std::strerror(err))};
            return nullptr;
        }
    }
    return box;
}

LockedFile::~LockedFile() {
    fd_.reset();  // closing drops the fcntl and flock locks
    if (!dotlock_.empty()) dotlock_release(dotlock_);
}

Outcome LockedFile::append(const CopyAttr& attr, const LineReader& next, uint64_t limit,
                           std::string_view def_dsn) {
    bool regular = is_regular();
    off_t start = regular ? ::lseek(fd_.get(), 0, SEEK_END) : 0;
    if (start < 0) start = 0;
    FdSink sink(fd_.get(), static_cast<uint64_t>(start), regular ? limit : 0);
    Outcome result = copy_message(attr, next, sink, def_dsn);
    if (!result && regular && (attr.flags & kCopyToFile) && ::fsync(fd_.get()) < 0) {
        int err = errno;
        result = Failure{mbox_dsn(err, def_dsn),
                         strprintf("error writing message: %s", std::strerror(err))};
    }
    // A failed append must not leave half a message for the next reader to mistake.
    if (result && regular && ::ftruncate(fd_.get(), start) < 0)
        result->reason += strprintf(" (truncate failed: %s)", std::strerror(errno));
    return result;
}

}  // namespace postern::mailbox
