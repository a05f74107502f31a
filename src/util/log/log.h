// One logging facility for every Postern program, formatted as Postfix formats it:
//   stderr:        "postmap: warning: text"            (basename of argv[0], as Postfix)
//   syslog:        tag "syslog_name/program", LOG_PID, facility syslog_facility
//   maillog_file:  "Nov 23 10:30:19 host postern/postmap[123]: warning: text"
// Severity prefixes are Postfix's: none for info, "warning:", "error:", "fatal:",
// "panic:". fatal exits 1; panic aborts.
//
// Only one of syslog and maillog_file is in effect at a time (maillog_file wins), as in
// Postfix. Postern has no postlogd: a process appends to maillog_file itself, one
// write(2) per line on an O_APPEND descriptor, so lines of concurrent writers stay whole.
#pragma once

#include <string>
#include <string_view>

#include "util/base/result.h"

namespace postern::log {

enum class Level { Info, Warning, Error, Fatal, Panic };

struct Settings {
    std::string syslog_name = "postern";
    std::string syslog_facility = "mail";
    std::string maillog_file;  // empty: syslog only
    bool to_stderr = true;
    bool to_syslog = true;
    // myhostname; maillog_file lines show its first label. Empty: gethostname().
    std::string hostname;
    // The whole tag instead of "syslog_name/program" (postlog -t).
    std::string tag;
    // The name before ": " on stderr; empty: the program name.
    std::string stderr_name;
    // Mode of a maillog_file that logging creates (maillog_file_permissions).
    int maillog_file_mode = 0600;
    // maillog_file = /dev/stdout is for daemons and postlog (containers). A command
    // whose stdout carries data (postmap -q, postconf) must never log there, so by
    // default such records are skipped (stderr still reports); daemons set true.
    bool maillog_stdout_ok = false;
    // When maillog_file cannot be opened or written: true stops the program with a
    // fatal error (postlog, daemons: the log is their output); false drops the record
    // (a command run by a user who may not write the log still reports on stderr, as
    // Postfix's commands do when they cannot reach postlogd).
    bool maillog_required = false;
};

// Call first with the program name ("postmap"); logging works at once with defaults.
void init(std::string_view program);
// Apply main.cf settings (syslog_name, syslog_facility, maillog_file) once they are known.
void configure(const Settings& settings);
const Settings& settings();
const std::string& program();
// Raise verbosity (-v); debug() lines print only when verbose() > 0.
void set_verbose(int level);
int verbose();
// Closes the maillog_file descriptor; the next line opens the file again (after the
// file was rotated, on reload).
void reopen();
// Opens maillog_file now, if set and not yet open. A daemon calls this before it drops
// root privileges, so that as mail_owner it still appends to a root-owned 0600 log
// (Postfix's postlogd opens the file before it drops privileges for the same reason).
Status open_maillog_now();

void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// fatal with a chosen exit status (Postfix's msg_fatal_status: sendmail's sysexits,
// postqueue's EX_UNAVAILABLE).
[[noreturn]] void fatal_status(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes one already-formatted line at `level` to every enabled sink. It does not exit,
// whatever the level (postlog -p fatal logs and carries on, as Postfix's does).
void emit(Level level, std::string_view text);

// The maillog_file line for `text` (without newline), stamped with the current local
// time: "Mon DD HH:MM:SS host tag[pid]: severity: text".
std::string format_logfile_line(Level level, std::string_view text, long pid);
// The same with an explicit time, for tests.
std::string format_logfile_line_at(Level level, std::string_view text, long pid, long when);

// Postfix's maillog_file_prefixes rule: maillog_file must start with one of the listed
// prefixes (comma/space separated, plain string prefixes). The error reads as Postfix's
// "maillog_file value '/x' does not match any prefix in maillog_file_prefixes".
Status check_maillog_prefix(std::string_view maillog_file, std::string_view prefixes);

// Postfix's syslog facility names (mail, daemon, local0..local7, ...); -1 when unknown.
int facility_code(std::string_view name);

// Postfix never logs control characters: each becomes '?'. Longer text is cut at
// Postfix's record limit (2000 bytes of text).
std::string sanitize(std::string_view text);

}  // namespace postern::log
