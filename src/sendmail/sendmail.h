// sendmail(1): the Sendmail-compatible front door. It parses Sendmail's options, then
// either hands the work to another command (postqueue, postalias, postern) or turns the
// message on standard input (or an SMTP dialogue, -bs) into a queue-file record stream
// for postdrop(1), which writes it to maildrop/.
#pragma once

#include <sysexits.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/config/config.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::sendmail {

enum class Mode { Enqueue, NewAliases, Mailq, Daemon, Smtp, Flush, Ignore };

// The trace flags sendmail writes in the queue file's trace_flags attribute.
inline constexpr long kTraceVerify = ipc::mail::kTraceFlagVerify;  // -bv
inline constexpr long kTraceRecord = ipc::mail::kTraceFlagRecord;  // -v

struct Options {
    Mode mode = Mode::Enqueue;
    bool dot_ends_input = true;  // cleared by -i / -oi
    bool extract = false;        // -t
    long trace_flags = 0;        // kTrace*
    int verbose = 0;
    const char* sender = nullptr;     // -f / -r
    const char* full_name = nullptr;  // -F
    std::string encoding;             // -B: "7bit" / "8bitmime"
    std::string envid;                // -V
    long notify = 0;                  // -N, Postfix's notify_flags bits
    long ret = 0;                     // -R, Postfix's ret_flags bits
    std::string rewrite_context = "local";  // -G: "remote"
    std::string alias_database;             // -oA
    std::string flush_site;                 // -qR
    std::string flush_id;                   // -qI
    bool queue_interval = false;            // -q1h: nothing to do outside daemon mode
    std::vector<std::string> recipients;    // the arguments after the options
};

// Exits with a sysexits status after logging "fatal: text".
using log::fatal_status;

// Pre-scans argv for -C (config file or directory) as Postfix does before main.cf is read.
std::string config_dir_from_args(int argc, char** argv);
// Parses the options; `program` is the basename of argv[0] (mailq, newaliases, ...).
Options parse_options(int argc, char** argv, std::string_view program);

// Replaces this process with command_directory/`argv[0]` (postqueue, postalias).
[[noreturn]] void run_command(const config::Config& cfg, std::vector<std::string> argv);
// Runs the command in the background and returns its exit status ("postern start").
int run_command_wait(const config::Config& cfg, std::vector<std::string> argv);

// The default envelope sender: the login name of the real user ID.
std::string login_name();
// The sender's full name: NAME, else the GECOS field of the password entry.
std::string default_full_name();

// Reads the message from stdin and hands it to postdrop; exits on failure.
void enqueue(const config::Config& cfg, const Options& opts);
// -bs: an SMTP dialogue on stdin/stdout; each accepted message goes through postdrop.
int smtp_session(const config::Config& cfg, const Options& opts);

}  // namespace postern::sendmail
