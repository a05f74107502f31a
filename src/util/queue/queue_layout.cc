#include "util/queue/queue_layout.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/log/log.h"
#include "util/queue/queue_id.h"

namespace postern::queue {
namespace {

Error errno_error(const char* what, const std::string& path) {
    return make_error(strprintf("%s %s: %s", what, path.c_str(), strerror(errno)));
}

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

// Walks a (possibly hashed) queue directory. Single-character subdirectories are the
// hash forest (depth is bounded so a loop of links cannot recurse forever).
Status scan(const std::string& dir, int depth_left, std::vector<std::string>& out) {
    std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
    if (!d) return errno_error("open directory", dir);
    while (struct dirent* e = readdir(d.get())) {
        std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = lstat((dir + "/" + e->d_name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            if (name.size() == 1 && depth_left > 0) {
                Status s = scan(dir + "/" + e->d_name, depth_left - 1, out);
                if (!s) return s;
            }
            continue;
        }
        if (id_ok(name)) out.emplace_back(name);
    }
    return {};
}

}  // namespace

Layout::Layout(std::string queue_directory, std::vector<std::string> hashed_queues, int depth,
               bool long_ids)
    : queue_directory_(std::move(queue_directory)),
      hashed_(std::move(hashed_queues)),
      depth_(std::clamp(depth, 1, 16)),
      long_ids_(long_ids) {}

Result<Layout> Layout::from_config(const config::Config& config) {
    auto qdir = config.try_get("queue_directory");
    if (!qdir) return make_error(qdir.error());
    auto depth = config.try_get_int("hash_queue_depth");
    if (!depth) return make_error(depth.error());
    auto long_ids = config.try_get_bool("enable_long_queue_ids");
    if (!long_ids) return make_error(long_ids.error());
    return Layout(*qdir, config.get_list("hash_queue_names"), static_cast<int>(*depth),
                  *long_ids);
}

bool Layout::is_hashed(std::string_view queue) const {
    return std::any_of(hashed_.begin(), hashed_.end(),
                       [&](const std::string& q) { return iequals(q, queue); });
}

std::string Layout::relative_path(std::string_view queue, std::string_view id) const {
    // Callers validate untrusted names first; reaching here with one is a bug (Postfix
    // panics the same way rather than build a path from it).
    if (!queue_name_ok(queue) || !id_ok(id))
        log::panic("queue path: bad queue name or id: %.100s/%.100s", std::string(queue).c_str(),
                   std::string(id).c_str());
    std::string out(queue);
    out += '/';
    if (is_hashed(queue)) {
        std::string src = hash_source(id);
        for (int i = 0; i < depth_; ++i) {
            out += i < static_cast<int>(src.size()) ? src[i] : '_';
            out += '/';
        }
    }
    out += id;
    return out;
}

std::string Layout::dir(std::string_view queue, std::string_view id) const {
    std::string full = path(queue, id);
    return full.substr(0, full.size() - id.size());
}

std::string Layout::path(std::string_view queue, std::string_view id) const {
    return queue_directory_ + "/" + relative_path(queue, id);
}

Result<std::vector<std::string>> Layout::list(std::string_view queue) const {
    if (!queue_name_ok(queue)) return make_error("bad queue name: " + std::string(queue));
    std::vector<std::string> ids;
    Status s = scan(queue_directory_ + "/" + std::string(queue), 16, ids);
    if (!s) return make_error(s.error());
    std::sort(ids.begin(), ids.end());
    return ids;
}

Status make_parent_dirs(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return {};
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return {};
    if (errno != ENOENT) return errno_error("create directory", dir);
    Status parent = make_parent_dirs(dir);
    if (!parent) return parent;
    if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return {};
    return errno_error("create directory", dir);
}

Status Layout::move(std::string_view id, std::string_view from, std::string_view to) const {
    if (!id_ok(id) || !queue_name_ok(from) || !queue_name_ok(to))
        return make_error("bad queue name or id: " + std::string(from) + "/" + std::string(id));
    std::string old_path = path(from, id), new_path = path(to, id);
    if (rename(old_path.c_str(), new_path.c_str()) == 0) return {};
    int saved = errno;
    if (saved == ENOENT && access(old_path.c_str(), F_OK) == 0) {
        Status s = make_parent_dirs(new_path);
        if (!s) return s;
        if (rename(old_path.c_str(), new_path.c_str()) == 0) return {};
        saved = errno;
    }
    errno = saved;
    return errno_error(("rename " + old_path + " to").c_str(), new_path);
}

Status Layout::remove(std::string_view queue, std::string_view id) const {
    if (!id_ok(id) || !queue_name_ok(queue)) return make_error("bad queue id: " + std::string(id));
    std::string p = path(queue, id);
    if (unlink(p.c_str()) != 0) return errno_error("remove", p);
    return {};
}

Result<std::string> Layout::find(std::string_view id) const {
    if (!id_ok(id)) return make_error("bad mail queue ID: " + std::string(id));
    for (std::string_view q : kMessageQueues) {
        struct stat st;
        if (lstat(path(q, id).c_str(), &st) == 0 && S_ISREG(st.st_mode)) return std::string(q);
    }
    return make_error("open queue file " + std::string(id) + ": No such file or directory");
}

Result<Ownership> resolve_ownership(const config::Config& config) {
    Ownership o;
    std::string owner = config.get("mail_owner");
    struct passwd* pw = getpwnam(owner.c_str());
    if (!pw)
        return make_error("file /etc/passwd: mail_owner: unknown user name value: " + owner +
                          " (create the account or set mail_owner in main.cf)");
    o.mail_uid = pw->pw_uid;
    o.mail_gid = pw->pw_gid;
    std::string group = config.get("setgid_group");
    struct group* gr = getgrnam(group.c_str());
    if (!gr)
        return make_error("file /etc/group: setgid_group: unknown group name: " + group +
                          " (create the group or set setgid_group in main.cf)");
    o.setgid_gid = gr->gr_gid;
    return o;
}

Ownership current_user_ownership() {
    return Ownership{getuid(), getgid(), getgid()};
}

}  // namespace postern::queue
