// Creating and checking the queue directory tree (postern set-permissions / check).
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/base/strings.h"
#include "util/queue/queue_layout.h"

namespace postern::queue {
namespace {

// Directories Postfix's postfix-files says belong to root are the invoking user's in a
// sandbox instance, where nothing runs as root.
uid_t root_owner() { return geteuid() == 0 ? 0 : geteuid(); }

std::string spec_path(const Layout& layout, const DirSpec& spec) {
    if (spec.name.empty()) return layout.queue_directory();
    return layout.queue_directory() + "/" + std::string(spec.name);
}

// "uid 103 (postfix)": the number is what the check compares, the name what an admin knows.
std::string uid_label(uid_t uid) {
    struct passwd* pw = getpwuid(uid);
    return strprintf("uid %ld (%s)", static_cast<long>(uid), pw ? pw->pw_name : "no such user");
}

std::string gid_label(gid_t gid) {
    struct group* gr = getgrgid(gid);
    return strprintf("gid %ld (%s)", static_cast<long>(gid), gr ? gr->gr_name : "no such group");
}

uid_t wanted_uid(const DirSpec& spec, const Ownership& owners) {
    return spec.mail_owned ? owners.mail_uid : root_owner();
}

Status fix_one(const std::string& path, const DirSpec& spec, const Ownership& owners) {
    if (mkdir(path.c_str(), spec.mode & 0777) != 0 && errno != EEXIST)
        return make_error(strprintf("create directory %s: %s", path.c_str(), strerror(errno)));
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return make_error(strprintf("%s: not a directory", path.c_str()));
    gid_t gid = spec.setgid_group ? owners.setgid_gid : static_cast<gid_t>(-1);
    uid_t uid = wanted_uid(spec, owners);
    if ((st.st_uid != uid || (spec.setgid_group && st.st_gid != gid)) &&
        chown(path.c_str(), uid, gid) != 0)
        return make_error(strprintf("change owner of %s: %s", path.c_str(), strerror(errno)));
    // chown clears set-id bits, so the mode is set last.
    if (chmod(path.c_str(), spec.mode) != 0)
        return make_error(strprintf("change mode of %s: %s", path.c_str(), strerror(errno)));
    return {};
}

}  // namespace

const std::vector<DirSpec>& queue_dir_specs() {
    static const std::vector<DirSpec> specs = {
        {"", false, false, 0755},           {"active", true, false, 0700},
        {"bounce", true, false, 0700},      {"corrupt", true, false, 0700},
        {"defer", true, false, 0700},       {"deferred", true, false, 0700},
        {"flush", true, false, 0700},       {"hold", true, false, 0700},
        {"incoming", true, false, 0700},    {"private", true, false, 0700},
        {"maildrop", true, true, 01730},    {"public", true, true, 02710},
        {"pid", false, false, 0755},        {"saved", true, false, 0700},
        {"trace", true, false, 0700},
    };
    return specs;
}

Status create_tree(const Layout& layout, const Ownership& owners) {
    for (const DirSpec& spec : queue_dir_specs()) {
        Status s = fix_one(spec_path(layout, spec), spec, owners);
        if (!s) return s;
    }
    return {};
}

Status create_missing_tree(const Layout& layout, const Ownership& owners) {
    for (const DirSpec& spec : queue_dir_specs()) {
        std::string path = spec_path(layout, spec);
        struct stat st;
        if (lstat(path.c_str(), &st) == 0 || errno != ENOENT) continue;
        Status s = fix_one(path, spec, owners);
        if (!s) return s;
    }
    return {};
}

std::vector<std::string> check_tree(const Layout& layout, const Ownership& owners) {
    std::vector<std::string> problems;
    for (const DirSpec& spec : queue_dir_specs()) {
        std::string path = spec_path(layout, spec);
        struct stat st;
        if (lstat(path.c_str(), &st) != 0) {
            problems.push_back(strprintf("%s: %s (run 'postern set-permissions' to create it)",
                                         path.c_str(), strerror(errno)));
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            problems.push_back(strprintf("%s: not a directory (move it away)", path.c_str()));
            continue;
        }
        uid_t uid = wanted_uid(spec, owners);
        if (st.st_uid != uid)
            problems.push_back(strprintf(
                "%s: owner is %s, should be %s (run 'postern set-permissions')", path.c_str(),
                uid_label(st.st_uid).c_str(), uid_label(uid).c_str()));
        if (spec.setgid_group && st.st_gid != owners.setgid_gid)
            problems.push_back(strprintf(
                "%s: group is %s, should be setgid_group %s (run 'postern set-permissions')",
                path.c_str(), gid_label(st.st_gid).c_str(), gid_label(owners.setgid_gid).c_str()));
        if ((st.st_mode & 07777) != spec.mode)
            problems.push_back(strprintf("%s: mode is %04o, should be %04o (run 'postern "
                                         "set-permissions')",
                                         path.c_str(), st.st_mode & 07777, spec.mode));
    }
    return problems;
}

}  // namespace postern::queue
