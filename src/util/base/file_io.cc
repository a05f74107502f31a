#include "util/base/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"

namespace postern {

Result<std::string> read_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return make_error(strprintf("open %s: %s", path.c_str(), std::strerror(errno)));
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(strprintf("read %s: %s", path.c_str(), std::strerror(errno)));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string dirname_of(std::string_view path) {
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return ".";
    if (slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

static Status write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(std::strerror(errno));
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::success();
}

Status replace_file_atomic(const std::string& path, std::string_view data, int mode) {
    std::string tmp = strprintf("%s.%ld.tmp", path.c_str(), static_cast<long>(::getpid()));
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        if (!fd) return make_error(strprintf("open %s: %s", tmp.c_str(), std::strerror(errno)));
        Status st = write_all(fd.get(), data);
        if (st.ok() && ::fsync(fd.get()) < 0) st = make_error(std::strerror(errno));
        if (!st.ok()) {
            ::unlink(tmp.c_str());
            return make_error(strprintf("write %s: %s", tmp.c_str(), st.error().c_str()));
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return make_error(strprintf("rename %s to %s: %s", tmp.c_str(), path.c_str(),
                                    std::strerror(err)));
    }
    UniqueFd dir(::open(dirname_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
    return Status::success();
}

}  // namespace postern
