#include "util/queue/mail_open_ok.h"

#include <errno.h>
#include <string.h>

#include "util/log/log.h"
#include "util/queue/queue_file.h"

namespace postern::queue {

bool mail_open_ok(const std::string& path, struct stat& st) {
    if (lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) log::warn("%s: %s", path.c_str(), strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        log::warn("%s: uid %ld: not a regular file", path.c_str(), static_cast<long>(st.st_uid));
        return false;
    }
    if ((st.st_mode & S_IRWXU) != kModeReady) return false;
    if (st.st_nlink > 1)
        log::warn("%s: uid %ld: file has %d links", path.c_str(), static_cast<long>(st.st_uid),
                  static_cast<int>(st.st_nlink));
    return true;
}

}  // namespace postern::queue
