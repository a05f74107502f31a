#include "util/log/log.h"

#include <fcntl.h>
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

// The logger is process-wide by nature (like stderr itself); its settings come from the
// process's one config object through configure().
struct LogState {
    std::string program = "postern";
    Settings settings;
    int verbose = 0;
    bool syslog_open = false;
    std::string hostname;
};

LogState& state() {
    static LogState s;
    return s;
}

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
    return LOG_MAIL;
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
    return s.settings.syslog_name + "/" + s.program;
}

void open_syslog() {
    LogState& s = state();
    if (s.syslog_open) closelog();
    // openlog keeps the pointer: keep the string alive in static storage.
    static std::string ident;
    ident = tag();
    openlog(ident.c_str(), LOG_PID | LOG_NDELAY, facility_code(s.settings.syslog_facility));
    s.syslog_open = true;
}

void write_all(int fd, const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(fd, line.data() + off, line.size() - off);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

void vemit(Level level, const char* fmt, va_list ap) {
    int saved = errno;
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    errno = saved;
    emit(level, buf);
}

}  // namespace

void init(std::string_view program) {
    LogState& s = state();
    size_t slash = program.rfind('/');
    s.program = std::string(slash == std::string_view::npos ? program : program.substr(slash + 1));
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0) s.hostname = host;
    open_syslog();
}

void configure(const Settings& settings) {
    state().settings = settings;
    open_syslog();
}

const std::string& program() { return state().program; }
void set_verbose(int level) { state().verbose = level; }
int verbose() { return state().verbose; }

std::string format_logfile_line(Level level, std::string_view text, long pid) {
    const LogState& s = state();
    time_t now = time(nullptr);
    struct tm lt;
    localtime_r(&now, &lt);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &lt);
    std::string host = s.hostname.substr(0, s.hostname.find('.'));
    return strprintf("%s %s %s[%ld]: %s%.*s", stamp, host.c_str(), tag().c_str(), pid,
                     severity_prefix(level), static_cast<int>(text.size()), text.data());
}

void emit(Level level, std::string_view text) {
    const LogState& s = state();
    if (s.settings.to_stderr) {
        std::string line = strprintf("%s: %s%.*s\n", s.program.c_str(), severity_prefix(level),
                                     static_cast<int>(text.size()), text.data());
        write_all(STDERR_FILENO, line);
    }
    if (!s.settings.maillog_file.empty()) {
        if (s.settings.maillog_file == "/dev/stdout") {
            write_all(STDOUT_FILENO, format_logfile_line(level, text, getpid()) + "\n");
        } else {
            UniqueFd fd(::open(s.settings.maillog_file.c_str(),
                               O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
            // One write() per line with O_APPEND keeps lines from several processes whole.
            if (fd) write_all(fd.get(), format_logfile_line(level, text, getpid()) + "\n");
        }
    } else if (s.settings.to_syslog) {
        syslog(syslog_priority(level), "%s%.*s", severity_prefix(level),
               static_cast<int>(text.size()), text.data());
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

void panic(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vemit(Level::Panic, fmt, ap);
    va_end(ap);
    std::abort();
}

}  // namespace postern::log
