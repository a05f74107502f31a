// postern(1): the control command (Postfix's postfix(1) with its postfix-script in one
// program). Each verb is a function over one loaded Instance.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/base/result.h"
#include "util/config/config.h"
#include "util/queue/queue_layout.h"

namespace postern::ctl {

struct Options {
    std::string config_dir;  // -c, else MAIL_CONFIG, else the default
    int verbose = 0;         // -v, passed on to master
    bool debug = false;      // -D, passed on to master
};

// What every verb needs: main.cf, the instance's directories and who owns them.
struct Instance {
    Options options;
    config::Config config;
    std::string queue_directory;
    std::string daemon_directory;
    std::string command_directory;
    std::string data_directory;
    queue::Layout layout;
    // A sandbox instance (postern not run as root): everything belongs to the invoking
    // user, whatever mail_owner says, because nothing could switch to another account.
    bool sandbox = false;
    // Resolved from mail_owner/setgid_group (root), or the invoking user (sandbox);
    // `owners_error` says why resolving failed (the check reports it).
    queue::Ownership owners;
    std::string owners_error;
};

Result<Instance> load_instance(const Options& options);

// Logging as postfix-script logs: tag "<syslog_name>/postern-script", to maillog_file
// or syslog and to stderr.
void use_script_logging(const config::Config& config);

// ---- master's pid file ---------------------------------------------------------------
// The PID of the running master of this instance (the process that holds the lock on
// queue_directory/pid/master.pid), or 0. A pid file left by a killed master holds no
// lock, so it never counts as running.
pid_t running_master(const Instance& inst);
std::string pid_file(const Instance& inst);

// Runs daemon_directory/master with `args` (after -c DIR and -v/-D as given) and
// returns its exit status; `exec_it` replaces this process instead (start-fg).
int run_master(const Instance& inst, const std::vector<std::string>& args, bool exec_it);

// ---- the verbs (exit status as postfix(1)'s) ------------------------------------------
int cmd_start(Instance& inst);
int cmd_start_fg(Instance& inst);
int cmd_stop(Instance& inst);
int cmd_abort(Instance& inst);
int cmd_reload(Instance& inst);
int cmd_status(Instance& inst);
int cmd_flush(Instance& inst);
int cmd_check(Instance& inst);
int cmd_set_permissions(Instance& inst);

// ---- checks ----------------------------------------------------------------------------
struct Finding {
    bool fatal = false;
    std::string text;  // says what is wrong and how to fix it
};
// Everything `postern check` looks at, after creating missing queue directories (as
// postfix-script's check-fatal runs post-install create-missing). `for_start` leaves
// out what master reports itself when it starts (services whose program is missing).
std::vector<Finding> check_instance(const Instance& inst, bool for_start);
// Logs the findings; true when none is fatal.
bool report_findings(const std::vector<Finding>& findings);

// set-permissions: owners and modes of the queue tree, data_directory and, as root, the
// set-gid postdrop/postqueue. Errors are returned, one line each.
std::vector<std::string> fix_permissions(const Instance& inst);
// Creates what is missing of the queue tree and data_directory (start, check).
Status create_missing(const Instance& inst);

}  // namespace postern::ctl
