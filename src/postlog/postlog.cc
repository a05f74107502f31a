// postlog(1): log text from the command line or from standard input the way Postern's
// own programs log, for shell scripts.
//
//   postlog [-iv] [-c config_dir] [-p priority] [-t tag] [text...]
//
// As Debian's Postfix 3.7: records go to maillog_file when it is set (written directly:
// postlog is one of the programs Postfix lets append to the file itself), otherwise to
// syslog; they go to stderr as well only when stderr is a terminal. The tag is
// "syslog_name/postlog" unless -t names one; the PID is always logged (-i is accepted
// and ignored, as in Postfix >= 3.4).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/log/log.h"
#include "util/log/log_config.h"

namespace postern::postlog {
namespace {

struct Options {
    const char* config_dir = nullptr;  // -c
    log::Level level = log::Level::Info;
    std::string tag;  // -t; empty: syslog_name/postlog
    int verbose = 0;
    std::vector<std::string> words;  // the text, when given on the command line
};

// Postfix's severity names, case-insensitive.
std::optional<log::Level> level_from_name(std::string_view name) {
    static const struct {
        const char* name;
        log::Level level;
    } kLevels[] = {
        {"info", log::Level::Info},   {"warn", log::Level::Warning},
        {"warning", log::Level::Warning}, {"error", log::Level::Error},
        {"err", log::Level::Error},   {"fatal", log::Level::Fatal},
        {"crit", log::Level::Fatal},  {"panic", log::Level::Panic},
    };
    for (const auto& l : kLevels)
        if (iequals(name, l.name)) return l.level;
    return std::nullopt;
}

Options parse_options(int argc, char** argv) {
    Options opt;
    int ch;
    while ((ch = getopt(argc, argv, "c:ip:t:v")) > 0) {
        switch (ch) {
            case 'c': opt.config_dir = optarg; break;
            case 'i': break;  // the PID is always logged
            case 'p': {
                auto level = level_from_name(optarg);
                if (!level) log::fatal("bad severity: \"%s\"", optarg);
                opt.level = *level;
                break;
            }
            case 't': opt.tag = optarg; break;
            case 'v': opt.verbose++; break;
            default:
                log::fatal("usage: postlog [-c config_dir] [-i] [-p priority] [-t tag] [-v] "
                           "[text]");
        }
    }
    for (int i = optind; i < argc; ++i) opt.words.emplace_back(argv[i]);
    return opt;
}

// Logging before main.cf is read: the default tag, stderr only on a terminal. The
// program part of the tag is the basename of argv[0], as in Postfix.
void early_logging(const char* argv0) {
    log::init(argv0 && *argv0 ? argv0 : "postlog");
    log::Settings s = log::settings();
    s.to_stderr = isatty(STDERR_FILENO) != 0;
    s.maillog_stdout_ok = true;  // stdout carries nothing else here
    s.maillog_required = true;   // the log is postlog's whole output
    s.stderr_name = s.syslog_name + "/" + log::program();
    log::configure(s);
}

void configure_logging(const config::Config& config, const Options& opt) {
    log::configure_from(config);
    log::Settings s = log::settings();
    s.tag = opt.tag;
    s.stderr_name = opt.tag.empty() ? s.syslog_name + "/" + log::program() : opt.tag;
    log::configure(s);
    log::set_verbose(opt.verbose);
}

// Each input line is one record; a long line is read whole but only its first part is
// logged (records stop at 2000 bytes).
void log_stdin(log::Level level) {
    constexpr size_t kKeep = 8192;
    std::string line;
    bool overlong = false;
    char buf[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) log::fatal("read standard input: %s", strerror(errno));
        if (n == 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == '\n') {
                log::emit(level, line);
                line.clear();
                overlong = false;
            } else if (line.size() < kKeep) {
                line += buf[i];
            } else if (!overlong) {
                overlong = true;
                log::debug("input line longer than %zu bytes truncated", kKeep);
            }
        }
    }
    if (!line.empty()) log::emit(level, line);
}

std::string join_words(const std::vector<std::string>& words) {
    std::string text;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i) text += ' ';
        text += words[i];
    }
    return text;
}

}  // namespace
}  // namespace postern::postlog

int main(int argc, char** argv) {
    using namespace postern;
    umask(022);
    postlog::early_logging(argv[0]);
    postlog::Options opt = postlog::parse_options(argc, argv);
    std::string dir = config::config_directory(opt.config_dir);
    auto config = config::Config::load(dir, log::program());
    if (!config.ok()) log::fatal("%s", config.error().c_str());
    postlog::configure_logging(*config, opt);
    if (!opt.words.empty())
        log::emit(opt.level, postlog::join_words(opt.words));
    else
        postlog::log_stdin(opt.level);
    return 0;
}
