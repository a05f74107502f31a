// Delivery to an external command (Postfix's pipe_command(), for local(8) |command
// destinations and mailbox_command, and for pipe(8)): fork, become the delivery user,
// start a new session, exec the command (pipe(8): an argument vector, never a shell;
// local(8): directly when it has no shell metacharacters, else through /bin/sh -c or
// local_command_shell), feed it the message
// on stdin while capturing a little of its stdout+stderr, enforce command_time_limit
// on the whole process group, and map the exit status through <sysexits.h> as Postfix.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "util/mailbox/mail_copy.h"

namespace postern::mailbox {

struct PipeCommand {
    std::string command;
    // pipe(8): executed as is, no shell; its first word names it in reasons. When set,
    // `command` and `shell` are not used.
    std::vector<std::string> argv;
    // Variables set in the child after the environment was cleared down to `exported`
    // (export_environment) and PATH reset.
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::string> exported;
    bool set_ids = false;  // root: setgid/setuid to uid/gid in the child
    uid_t uid = 0;
    gid_t gid = 0;
    std::string cwd;       // "" = stay where we are
    std::string chroot;    // pipe(8) chroot=: before the ids change ("" = none)
    std::string shell;     // local_command_shell ("" = direct exec or /bin/sh -c)
    long time_limit = 1000;
    // RLIMIT_FSIZE for the command (mailbox_size_limit, as the local(8) process Postfix
    // forks it from has that limit); 0 = unchanged.
    long file_limit = 0;
};

enum class PipeStatus { Ok, Defer, Bounce, Corrupt };

struct PipeResult {
    PipeStatus status = PipeStatus::Ok;
    std::string dsn;     // "2.0.0", "4.3.0", "5.3.0", ...
    std::string reason;  // Postfix's text, e.g. Command died with status 1: "cmd"
    std::string output;  // captured output, tabs/newlines as spaces, unprintables '_'
};

// Runs the command with the message (copy_message with `attr`) on its stdin.
PipeResult run_pipe_command(const PipeCommand& cmd, const CopyAttr& attr, const LineReader& next);

// <sysexits.h> codes as Postfix's sys_exits table: status and text; nullptr when the
// code is not one of them.
struct SysExit {
    int code;
    const char* dsn;
    const char* text;
};
const SysExit* sys_exit_detail(int code);

}  // namespace postern::mailbox
