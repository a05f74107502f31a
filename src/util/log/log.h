// One logging facility for every Postern program, formatted as Postfix formats it:
//   stderr:        "postmap: warning: text"            (commands, when enabled)
//   syslog:        tag "syslog_name/program", LOG_PID, facility syslog_facility
//   maillog_file:  "Nov 23 10:30:19 host postern/postmap[123]: warning: text"
// Severity prefixes are Postfix's: none for info, "warning:", "error:", "fatal:",
// "panic:". fatal exits 1; panic aborts.
#pragma once

#include <string>
#include <string_view>

namespace postern::log {

enum class Level { Info, Warning, Error, Fatal, Panic };

struct Settings {
    std::string syslog_name = "postern";
    std::string syslog_facility = "mail";
    std::string maillog_file;  // empty: syslog only
    bool to_stderr = true;
    bool to_syslog = true;
};

// Call first with the program name ("postmap"); logging works at once with defaults.
void init(std::string_view program);
// Apply main.cf settings (syslog_name, syslog_facility, maillog_file) once they are known.
void configure(const Settings& settings);
const std::string& program();
// Raise verbosity (-v); debug() lines print only when verbose() > 0.
void set_verbose(int level);
int verbose();

void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes one already-formatted line at `level` to every enabled sink.
void emit(Level level, std::string_view text);

// For tests: the text the last emit() produced for maillog_file (without newline).
std::string format_logfile_line(Level level, std::string_view text, long pid);

}  // namespace postern::log
