// The command line master gives a daemon, a documented subset of Postfix's generic daemon
// options (master(5), multi_server.c):
//   -n name    service name (master.cf column 1)
//   -t type    transport type: inet, unix, unix-dgram, fifo, pass
//   -u         unprivileged: drop to mail_owner when started as root
//   -c         chroot into queue_directory
//   -s count   number of listening descriptors from kListenFd on (default 1)
//   -o n=v     main.cf override for this service (repeatable)
//   -v         more verbose logging (repeatable)
//   -l         solitary: maxproc is 1 (informational)
//   -z         maxproc is 0, no process limit (informational)
//   -S         stand-alone: serve one client on stdin/stdout, no master (debugging)
// Anything after the options is passed to the daemon as its arguments. The config
// directory comes from MAIL_CONFIG, which master sets, as in Postfix.
#pragma once

#include <string>
#include <vector>

#include "util/base/result.h"
#include "util/config/master_cf.h"

namespace postern::daemon {

struct DaemonArgs {
    std::string service_name;
    std::string transport = "unix";
    bool unprivileged = false;
    bool chroot = false;
    int listen_count = 1;
    std::vector<config::MasterOverride> overrides;
    int verbose = 0;
    bool solitary = false;
    bool zero_limit = false;
    bool stdin_mode = false;
    std::vector<std::string> args;  // after the options
};

// Errors read as Postfix's: "invalid option -- 'x'", "-o: missing '=' in \"x\"".
Result<DaemonArgs> parse_daemon_args(const std::vector<std::string>& argv);

// The argv master builds for a service, the inverse of parse_daemon_args (without argv[0]).
std::vector<std::string> build_daemon_args(const DaemonArgs& args);

}  // namespace postern::daemon
