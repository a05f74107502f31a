#include "util/log/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"

namespace postern::log {
namespace {

// Postfix cuts a log record's text at this many bytes (msg_logger's MSG_LOGGER_RECLEN):
// unlimited logging is a liability.
constexpr size_t kMaxRecord = 2000;

// The logger is process-wide by nature (like stderr itself); its settings come from the
// process's one config object through configure().
struct LogState {
    std::string program = "postern";
    Settings settings;
    int verbose = 0;
    bool syslog_open = false;
    std::string hostname;  // gethostname() at init
    UniqueFd maillog_fd;   // cached O_APPEND descriptor of maillog_file
    bool in_fatal = false; // guards against recursion when the logfile itself fails
    bool maillog_broken = false;  // open failed and the log is optional: stop trying
};

LogState& state() {
    static LogState s;
    return s;
}

const char* severity_prefix(Level level) {
    switch (level) {
        case Level::Info: return "";
        case Level::Warning: return "warning: ";
        case Level::Error: return "error: ";
        case Level::Fatal: return "fatal: ";
        case Level::Panic: return "panic: ";
    }
    return "";
}

int syslog_priority(Level level) {
    switch (level) {
        case Level::Info: return LOG_INFO;
        case Level::Warning: return LOG_WARNING;
        case Level::Error: return LOG_ERR;
        case Level::Fatal: return LOG_CRIT;
        case Level::Panic: return LOG_CRIT;
    }
    return LOG_INFO;
}

std::string tag() {
    const LogState& s = state();
    if (!s.settings.tag.empty()) return s.settings.tag;
    return s.settings.syslog_name + "/" + s.program;
}

void open_syslog() {
    LogState& s = state();
    if (s.syslog_open) closelog();
    // openlog keeps the pointer: keep the string alive in static storage.
    static std::string ident;
    ident = tag();
    int facility = facility_code(s.settings.syslog_facility);
    // LOG_NDELAY is left out: a command that never logs never touches /dev/log.
    openlog(ident.c_str(), LOG_PID, facility < 0 ? LOG_MAIL : facility);
    s.syslog_open = true;
}

bool write_all(int fd, const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(fd, line.data() + off, line.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

void vemit(Level level, const char* fmt, va_list ap) {
    int saved = errno;
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    errno = saved;
    emit(level, buf);
}

// Opens maillog_file for appending. Like Postfix's safe_open, it refuses a symbolic
// link or a file with several hard links, so a writable directory cannot redirect the
// log onto another file.
Result<UniqueFd> open_maillog(const Settings& st) {
    const std::string& path = st.maillog_file;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                       st.maillog_file_mode));
    if (!fd) return make_error(strprintf("open logfile '%s': %s", path.c_str(), strerror(errno)));
    struct stat sb;
    if (fstat(fd.get(), &sb) < 0)
        return make_error(strprintf("open logfile '%s': %s", path.c_str(), strerror(errno)));
    if (S_ISREG(sb.st_mode) && sb.st_nlink > 1)
        return make_error(strprintf("open logfile '%s': file has %lu hard links", path.c_str(),
                                    static_cast<unsigned long>(sb.st_nlink)));
    return fd;
}

// The logfile cannot be written: say so where a human may see it, then stop, as
// Postfix does ("logfile ... is not available").
[[noreturn]] void maillog_unavailable(const std::string& why) {
    LogState& s = state();
    s.in_fatal = true;
    std::string line = strprintf("%s: fatal: %s\n",
                                 (s.settings.stderr_name.empty() ? s.program
                                                                 : s.settings.stderr_name)
                                     .c_str(),
                                 why.c_str());
    write_all(STDERR_FILENO, line);
    if (s.settings.to_syslog) syslog(LOG_CRIT, "fatal: %s", why.c_str());
    std::exit(1);
}

void write_maillog(Level level, std::string_view text) {
    LogState& s = state();
    const Settings& st = s.settings;
    std::string line = format_logfile_line(level, text, getpid()) + "\n";
    if (st.maillog_file == "/dev/stdout") {
        if (st.maillog_stdout_ok) write_all(STDOUT_FILENO, line);
        return;
    }
    if (s.in_fatal || s.maillog_broken) return;
    if (!s.maillog_fd) {
        auto fd = open_maillog(st);
        if (!fd.ok()) {
            if (st.maillog_required) maillog_unavailable(fd.error());
            s.maillog_broken = true;
            return;
        }
        s.maillog_fd = std::move(fd.value());
    }
    // One write() per line with O_APPEND keeps lines from several processes whole.
    if (!write_all(s.maillog_fd.get(), line) && st.maillog_required)
        maillog_unavailable(strprintf("write logfile '%s': %s", st.maillog_file.c_str(),
                                      strerror(errno)));
}

}  // namespace

int facility_code(std::string_view name) {
    static const struct {
        const char* name;
        int code;
    } kFacilities[] = {
        {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
        {"daemon", LOG_DAEMON}, {"kern", LOG_KERN},         {"lpr", LOG_LPR},
        {"mail", LOG_MAIL},     {"news", LOG_NEWS},         {"syslog", LOG_SYSLOG},
        {"user", LOG_USER},     {"uucp", LOG_UUCP},         {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},     {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
    };
    for (const auto& f : kFacilities)
        if (iequals(name, f.name)) return f.code;
    return -1;
}

std::string sanitize(std::string_view text) {
    std::string out(text.substr(0, kMaxRecord));
    for (char& c : out) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) c = '?';
    }
    return out;
}

Status check_maillog_prefix(std::string_view maillog_file, std::string_view prefixes) {
    for (std::string_view p : split_tokens(prefixes, ", \t\r\n"))
        if (maillog_file.substr(0, p.size()) == p) return Status::success();
    return make_error(strprintf("maillog_file value '%.*s' does not match any prefix in "
                                "maillog_file_prefixes",
                                static_cast<int>(maillog_file.size()), maillog_file.data()));
}

void init(std::string_view program) {
    LogState& s = state();
    size_t slash = program.rfind('/');
    s.program = std::string(slash == std::string_view::npos ? program : program.substr(slash + 1));
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0) s.hostname = host;
    open_syslog();
}

void configure(const Settings& settings) {
    LogState& s = state();
    bool file_changed = settings.maillog_file != s.settings.maillog_file;
    s.settings = settings;
    if (file_changed) s.maillog_fd.reset();
    s.maillog_broken = false;
    open_syslog();
}

const Settings& settings() { return state().settings; }
const std::string& program() { return state().program; }
void set_verbose(int level) { state().verbose = level; }
int verbose() { return state().verbose; }
Status open_maillog_now() {
    LogState& s = state();
    const std::string& path = s.settings.maillog_file;
    if (path.empty() || path == "/dev/stdout" || s.maillog_fd) return Status::success();
    auto fd = open_maillog(s.settings);
    if (!fd.ok()) return make_error(fd.error());
    s.maillog_fd = std::move(fd.value());
    s.maillog_broken = false;
    return Status::success();
}

void reopen() {
    state().maillog_fd.reset();
    state().maillog_broken = false;
}

std::string format_logfile_line_at(Level level, std::string_view text, long pid, long when) {
    const LogState& s = state();
    time_t now = static_cast<time_t>(when);
    struct tm lt;
    localtime_r(&now, &lt);
    char stamp[64];
    // Postfix's msg_logger stamp: the day is zero-padded ("Nov 03"), unlike syslogd's.
    strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &lt);
    const std::string& full = s.settings.hostname.empty() ? s.hostname : s.settings.hostname;
    std::string host = full.substr(0, full.find('.'));
    std::string clean = sanitize(text);
    return strprintf("%s %s %s[%ld]: %s%s", stamp, host.c_str(), tag().c_str(), pid,
                     severity_prefix(level), clean.c_str());
}

std::string format_logfile_line(Level level, std::string_view text, long pid) {
    return format_logfile_line_at(level, text, pid, static_cast<long>(time(nullptr)));
}

void emit(Level level, std::string_view text) {
    const LogState& s = state();
    std::string clean = sanitize(text);
    if (s.settings.to_stderr) {
        const std::string& name =
            s.settings.stderr_name.empty() ? s.program : s.settings.stderr_name;
        write_all(STDERR_FILENO,
                  strprintf("%s: %s%s\n", name.c_str(), severity_prefix(level), clean.c_str()));
    }
    if (!s.settings.maillog_file.empty()) {
        write_maillog(level, clean);
    } else if (s.settings.to_syslog) {
        syslog(syslog_priority(level), "%s%s", severity_prefix(level), clean.c_str());
    }
}

#define POSTERN_LOG_FN(name, level)   \
    void name(const char* fmt, ...) { \
        va_list ap;                   \
        va_start(ap, fmt);            \
        vemit(level, fmt, ap);        \
        va_end(ap);                   \
    }
POSTERN_LOG_FN(info, Level::Info)
POSTERN_LOG_FN(warn, Level::Warning)
POSTERN_LOG_FN(error, Level::Error)
#undef POSTERN_LOG_FN

void debug(const char* fmt, ...) {
    if (state().verbose <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vemit(Level::Info, fmt, ap);
    va_end(ap);
}

void fatal(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vemit(Level::Fatal, fmt, ap);
    va_end(ap);
    std::exit(1);
}

void fatal_status(int status, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vemit(Level::Fatal, fmt, ap);
    va_end(ap);
    std::exit(status);
}

void panic(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vemit(Level::Panic, fmt, ap);
    va_end(ap);
    std::abort();
}

}  // namespace postern::log
