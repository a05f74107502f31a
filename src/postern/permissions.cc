// postern set-permissions, and the create-missing step of start and check: owners and
// modes as Postfix's postfix-files lists them.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "postern/postern.h"
#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::ctl {
namespace {

// $data_directory:d:$mail_owner:-:700:uc
Status make_data_directory(const Instance& inst, bool fix_existing) {
    const std::string& dir = inst.data_directory;
    bool created = mkdir(dir.c_str(), 0700) == 0;
    if (!created && errno != EEXIST)
        return make_error(strprintf("create directory %s: %s", dir.c_str(), std::strerror(errno)));
    if (!created && !fix_existing) return {};
    if (geteuid() == 0 && chown(dir.c_str(), inst.owners.mail_uid, inst.owners.mail_gid) != 0)
        return make_error(strprintf("change owner of %s: %s", dir.c_str(), std::strerror(errno)));
    if (chmod(dir.c_str(), 0700) != 0)
        return make_error(strprintf("change mode of %s: %s", dir.c_str(), std::strerror(errno)));
    return {};
}

// The 'r' flag of postfix-files: what the queues hold belongs to mail_owner too (queue
// files copied in by root, or left by an earlier mail_owner). Returns the failures.
int chown_queue_contents(const Instance& inst) {
    namespace fs = std::filesystem;
    int failures = 0;
    for (const char* q : {"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                          "incoming", "saved", "trace"}) {
        std::error_code ec;
        fs::recursive_directory_iterator it(inst.queue_directory + "/" + q, ec), end;
        for (; !ec && it != end; it.increment(ec)) {
            struct stat st;
            const std::string path = it->path().string();
            if (lstat(path.c_str(), &st) != 0 || st.st_uid == inst.owners.mail_uid) continue;
            if (lchown(path.c_str(), inst.owners.mail_uid, inst.owners.mail_gid) == 0) continue;
            log::warn("change owner of %s: %s", path.c_str(), std::strerror(errno));
            ++failures;
        }
    }
    return failures;
}

// $command_directory/postdrop:f:root:$setgid_group:2755:u (and postqueue).
void fix_setgid_commands(const Instance& inst, std::vector<std::string>& errors) {
    for (const char* name : {"postdrop", "postqueue"}) {
        std::string path = inst.command_directory + "/" + name;
        struct stat st;
        if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (chown(path.c_str(), 0, inst.owners.setgid_gid) != 0 || chmod(path.c_str(), 02755) != 0)
            errors.push_back(strprintf("set-gid %s: %s", path.c_str(), std::strerror(errno)));
    }
}

}  // namespace

Status create_missing(const Instance& inst) {
    if (mkdir(inst.queue_directory.c_str(), 0755) != 0 && errno != EEXIST)
        return make_error(strprintf("create directory %s: %s", inst.queue_directory.c_str(),
                                    std::strerror(errno)));
    Status s = queue::create_missing_tree(inst.layout, inst.owners);
    if (!s) return s;
    return make_data_directory(inst, false);
}

std::vector<std::string> fix_permissions(const Instance& inst) {
    std::vector<std::string> errors;
    if (!inst.owners_error.empty()) return {inst.owners_error};
    if (mkdir(inst.queue_directory.c_str(), 0755) != 0 && errno != EEXIST)
        return {strprintf("create directory %s: %s", inst.queue_directory.c_str(), std::strerror(errno))};
    if (Status s = queue::create_tree(inst.layout, inst.owners); !s) errors.push_back(s.error());
    if (Status s = make_data_directory(inst, true); !s) errors.push_back(s.error());
    if (geteuid() == 0) {
        if (chown_queue_contents(inst) != 0) errors.push_back("some queue files could not be given to mail_owner");
        fix_setgid_commands(inst, errors);
    }
    return errors;
}

int cmd_set_permissions(Instance& inst) {
    std::vector<std::string> errors = fix_permissions(inst);
    for (const std::string& e : errors) log::emit(log::Level::Fatal, e);
    return errors.empty() ? 0 : 1;
}

}  // namespace postern::ctl
