#include "util/mailbox/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"

namespace postern::mailbox {

namespace {

// mkdir -p with mode 0700, as Postfix's make_dirs.
bool make_dirs(const std::string& path) {
    std::string partial;
    for (size_t pos = 0; pos <= path.size(); ++pos) {
        if (pos < path.size() && path[pos] != '/') continue;
        partial = path.substr(0, pos);
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0700) < 0 && errno != EEXIST) return false;
    }
    return true;
}

std::string local_hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0) return "localhost";
    return buf;
}

bool fsync_dir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return fd && ::fsync(fd.get()) == 0;
}

}  // namespace

std::string maildir_hostname(std::string_view host) {
    std::string out;
    for (char c : host) {
        if (c == '/') out += "\\057";
        else if (c == ':') out += "\\072";
        else out += c;
    }
    return out;
}

Outcome deliver_maildir(const MaildirDelivery& where, const CopyAttr& attr,
                        const LineReader& next, std::string* new_path) {
    static unsigned sequence = 0;
    std::string dir = where.dir;
    if (dir.empty() || dir.back() != '/') dir += '/';
    std::string tmpdir = dir + "tmp/", newdir = dir + "new/", curdir = dir + "cur/";
    std::string host = maildir_hostname(where.hostname.empty() ? local_hostname() : where.hostname);
    struct timeval start {};
    gettimeofday(&start, nullptr);
    std::string tmpfile = tmpdir + strprintf("%ld.P%ldQ%u.%s", static_cast<long>(start.tv_sec),
                                             static_cast<long>(::getpid()), ++sequence, host.c_str());
    auto create = [&] {
        return ::open(tmpfile.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    };
    UniqueFd fd(create());
    if (!fd && errno == ENOENT && make_dirs(tmpdir)) fd.reset(create());
    if (!fd) {
        int err = errno;
        return Failure{mbox_dsn(err, "5.2.0"), strprintf("create %s: %s",
                                                         tmpfile.c_str(), std::strerror(err))};
    }
    struct stat st {};
    ::fstat(fd.get(), &st);
    std::string newfile = newdir + strprintf("%ld.V%lxI%lxM%ld.%s", static_cast<long>(start.tv_sec),
                                             static_cast<unsigned long>(st.st_dev),
                                             static_cast<unsigned long>(st.st_ino),
                                             static_cast<long>(start.tv_usec), host.c_str());
    FdSink sink(fd.get(), 0, where.limit);
    Outcome result = copy_message(attr, next, sink, "5.2.0");
    if (!result && ::fsync(fd.get()) < 0) {
        int err = errno;
        result = Failure{mbox_dsn(err, "5.2.0"), strprintf("error writing message: %s", std::strerror(err))};
    }
    fd.reset();
    if (!result) {
        bool linked = ::link(tmpfile.c_str(), newfile.c_str()) == 0;
        if (!linked && errno == ENOENT && make_dirs(curdir) && make_dirs(newdir))
            linked = ::link(tmpfile.c_str(), newfile.c_str()) == 0;
        if (!linked) {
            int err = errno;
            result = Failure{mbox_dsn(err, "5.2.0"),
                             strprintf("link to %s: %s", newfile.c_str(), std::strerror(err))};
        } else if (!fsync_dir(newdir)) {
            int err = errno;
            ::unlink(newfile.c_str());
            result = Failure{mbox_dsn(err, "4.3.0"),
                             strprintf("fsync %s: %s", newdir.c_str(), std::strerror(err))};
        }
    }
    ::unlink(tmpfile.c_str());
    if (!result && new_path) *new_path = newfile;
    return result;
}

}  // namespace postern::mailbox
