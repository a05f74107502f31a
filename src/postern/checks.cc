// postern check: postfix-script's check-fatal and check-warn, and the privilege checks
// Postfix's mail_params.c makes, each finding saying how to fix it.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "postern/postern.h"
#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::ctl {
namespace {

using Findings = std::vector<Finding>;

void fatal(Findings& out, std::string text) { out.push_back({true, std::move(text)}); }
void warn(Findings& out, std::string text) { out.push_back({false, std::move(text)}); }

bool is_dir(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The directories postfix-script cannot do without ("no Postfix ... directory").
void check_directories(const Instance& inst, Findings& out) {
    const struct {
        const char* what;
        const char* param;
        const std::string& path;
    } dirs[] = {
        {"command directory", "command_directory", inst.command_directory},
        {"daemon directory", "daemon_directory", inst.daemon_directory},
        {"configuration directory", nullptr, inst.options.config_dir},
        {"queue directory", "queue_directory", inst.queue_directory},
    };
    for (const auto& d : dirs) {
        if (is_dir(d.path)) continue;
        fatal(out, strprintf("no Postern %s %s! (%s)", d.what, d.path.c_str(),
                             d.param ? strprintf("create it or set %s in main.cf", d.param).c_str()
                                     : "use -c or MAIL_CONFIG to name the directory of main.cf"));
    }
    std::string master = inst.daemon_directory + "/master";
    if (is_dir(inst.daemon_directory) && access(master.c_str(), X_OK) != 0)
        fatal(out, strprintf("no Postern master program %s! (build it with 'make', or set "
                             "daemon_directory in main.cf)", master.c_str()));
}

// mail_params.c's rules for mail_owner and setgid_group, with Postfix's texts.
void check_accounts(const Instance& inst, Findings& out) {
    const config::Config& c = inst.config;
    std::string where = "file " + c.main_cf_path() + ": parameter ";
    std::string owner = c.get("mail_owner"), group = c.get("setgid_group");
    if (inst.sandbox) {
        struct passwd* me = getpwuid(geteuid());
        std::string name = me ? me->pw_name : std::to_string(geteuid());
        if (owner != name)
            warn(out, strprintf("mail_owner = %s, but without root everything of this instance "
                                "runs as and belongs to %s (set mail_owner = %s, or run postern "
                                "as root)", owner.c_str(), name.c_str(), name.c_str()));
        // Someone else's instance (root's, say): its master would not start as this user.
        struct stat st;
        if (stat(inst.queue_directory.c_str(), &st) == 0 && st.st_uid != geteuid())
            fatal(out, strprintf("queue_directory %s belongs to uid %ld, not to %s (run postern "
                                 "as root for a system instance, or use a queue_directory of "
                                 "your own)", inst.queue_directory.c_str(),
                                 static_cast<long>(st.st_uid), name.c_str()));
        return;
    }
    if (!inst.owners_error.empty()) return fatal(out, inst.owners_error);
    const queue::Ownership& o = inst.owners;
    if (o.mail_uid == 0)
        fatal(out, where + "mail_owner: user " + owner + " has privileged user ID (set mail_owner "
                   "to a dedicated unprivileged account such as postfix)");
    if (o.mail_gid == 0)
        fatal(out, where + "mail_owner: user " + owner + " has privileged group ID (give the "
                   "account its own primary group)");
    if (o.setgid_gid == 0)
        fatal(out, where + "setgid_group: group " + group + " has privileged group ID (set "
                   "setgid_group to a dedicated group such as postdrop)");
    if (o.mail_gid == o.setgid_gid && o.mail_uid != 0)
        fatal(out, strprintf("file %s: parameters mail_owner and setgid_group: user %s and group "
                             "%s have the same group ID: %ld (use a group of its own for "
                             "setgid_group)", c.main_cf_path().c_str(), owner.c_str(),
                             group.c_str(), static_cast<long>(o.setgid_gid)));
}

// As root the daemons run as mail_owner: every directory above queue_directory must let
// that account through, or they fail on their first chdir.
void check_queue_reachable(const Instance& inst, Findings& out) {
    if (inst.sandbox || !inst.owners_error.empty()) return;
    const queue::Ownership& o = inst.owners;
    std::string path = inst.queue_directory;
    while (path.size() > 1) {
        path = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;
        bool ok = (st.st_mode & S_IXOTH) || (st.st_uid == o.mail_uid && (st.st_mode & S_IXUSR)) ||
                  (st.st_gid == o.mail_gid && (st.st_mode & S_IXGRP));
        if (!ok)
            fatal(out, strprintf("mail_owner %s cannot reach queue_directory %s: %s has mode %04o "
                                 "(chmod o+x %s, or move the queue)",
                                 inst.config.get("mail_owner").c_str(),
                                 inst.queue_directory.c_str(), path.c_str(),
                                 st.st_mode & 07777, path.c_str()));
    }
}

void check_queue_tree(const Instance& inst, Findings& out) {
    if (!inst.owners_error.empty() || !is_dir(inst.queue_directory)) return;
    for (std::string& line : queue::check_tree(inst.layout, inst.owners)) warn(out, std::move(line));
    struct stat st;
    const std::string& data = inst.data_directory;
    if (stat(data.c_str(), &st) != 0)
        warn(out, strprintf("%s: %s (run 'postern set-permissions' to create data_directory)",
                            data.c_str(), std::strerror(errno)));
    else if (st.st_uid != inst.owners.mail_uid)
        warn(out, strprintf("not owned by %s: %s (run 'postern set-permissions')",
                            inst.config.get("mail_owner").c_str(), data.c_str()));
}

// postfix-script check-warn: set-gid postdrop and postqueue (only root can set them).
void check_setgid_commands(const Instance& inst, Findings& out) {
    if (inst.sandbox || !inst.owners_error.empty()) return;
    for (const char* name : {"postdrop", "postqueue"}) {
        std::string path = inst.command_directory + "/" + name;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;  // not built yet
        if (st.st_gid != inst.owners.setgid_gid)
            warn(out, strprintf("not owned by group %s: %s (run 'postern set-permissions')",
                                inst.config.get("setgid_group").c_str(), path.c_str()));
        if ((st.st_mode & 02111) != 02111)
            warn(out, strprintf("not set-gid or not owner+group+world executable: %s (run "
                                "'postern set-permissions')", path.c_str()));
    }
}

// A domain in both lists goes to the local and the virtual delivery path at once;
// trivial-rewrite warns about it for every message (Postfix's wording).
void check_domain_overlap(const Instance& inst, Findings& out) {
    std::set<std::string> local;
    for (const std::string& d : inst.config.get_list("mydestination"))
        if (d.find(':') == std::string::npos && d.find('/') == std::string::npos) local.insert(lowercase(d));
    for (const char* other : {"virtual_alias_domains", "virtual_mailbox_domains"}) {
        for (const std::string& d : inst.config.get_list(other)) {
            if (!local.count(lowercase(d))) continue;
            warn(out, strprintf("do not list domain %s in BOTH mydestination and %s (remove it "
                                "from one of them: postconf -e to edit main.cf)",
                                d.c_str(), other));
        }
    }
}

// Services whose daemon is missing would fail each time a client connects (master
// itself skips them with a warning, so start leaves that report to master).
void check_master_cf(const Instance& inst, Findings& out, bool programs) {
    auto cf = config::load_master_cf(inst.options.config_dir,
                                     static_cast<int>(inst.config.get_int("default_process_limit")));
    if (!cf) {
        std::string path = inst.options.config_dir + "/master.cf";
        if (access(path.c_str(), F_OK) != 0)
            return fatal(out, "no " + path + " file found (copy conf/master.cf of the source tree)");
        return fatal(out, cf.error());
    }
    for (const std::string& w : cf->warnings) warn(out, w);
    if (!programs) return;
    for (const config::MasterService& s : cf->services) {
        std::string program = s.command.find('/') == 0 ? s.command
                                                         : inst.daemon_directory + "/" + s.command;
        if (access(program.c_str(), X_OK) == 0) continue;
        warn(out, strprintf("master.cf line %d: service %s/%s: program %s is missing (build it, "
                            "or comment out the service)", s.line, s.name.c_str(),
                            std::string(config::service_type_name(s.type)).c_str(),
                            program.c_str()));
    }
}

}  // namespace

std::vector<Finding> check_instance(const Instance& inst, bool for_start) {
    Findings out;
    check_accounts(inst, out);
    if (inst.owners_error.empty()) {
        Status s = create_missing(inst);
        if (!s) fatal(out, "unable to create missing queue directories: " + s.error());
    }
    check_directories(inst, out);
    check_queue_reachable(inst, out);
    check_master_cf(inst, out, !for_start);
    check_queue_tree(inst, out);
    check_setgid_commands(inst, out);
    check_domain_overlap(inst, out);
    return out;
}

bool report_findings(const std::vector<Finding>& findings) {
    bool ok = true;
    for (const Finding& f : findings) {
        if (f.fatal) {
            log::emit(log::Level::Fatal, f.text);
            ok = false;
        } else {
            log::warn("%s", f.text.c_str());
        }
    }
    return ok;
}

int cmd_check(Instance& inst) {
    // postfix-script check-fatal stops at the first fatal problem; all of them at once
    // spare the admin a round trip per problem.
    return report_findings(check_instance(inst, false)) ? 0 : 1;
}

}  // namespace postern::ctl
