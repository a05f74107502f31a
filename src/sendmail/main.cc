// sendmail(1), mailq(1) and newaliases(1): the mode decides what runs. Everything but
// delivery mode and -bs is handed to another Postern command, as Postfix does.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sendmail/sendmail.h"
#include "util/access/user_acl.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/log_config.h"

namespace postern::sendmail {
namespace {

std::vector<char*> c_args(std::vector<std::string>& args) {
    std::vector<char*> out;
    for (auto& a : args) out.push_back(a.data());
    out.push_back(nullptr);
    return out;
}

std::string command_path(const config::Config& cfg, const std::string& name) {
    return cfg.get("command_directory") + "/" + name;
}

// Standard descriptors closed by the caller must not be reused for our own files.
void open_std_fds() {
    for (int fd = 0; fd < 3; ++fd) {
        struct stat st;
        if (fstat(fd, &st) == 0) continue;
        if (open("/dev/null", O_RDWR) != fd) fatal_status(EX_OSERR, "open /dev/null: %s", strerror(errno));
    }
}

std::vector<std::string> with_verbose(std::vector<std::string> args, int verbose) {
    for (int i = 0; i < verbose; ++i) args.insert(args.begin() + 1, "-v");
    return args;
}

void require_no_recipients(const Options& o, const char* what) {
    if (!o.recipients.empty()) fatal_status(EX_USAGE, "%s requires no recipient", what);
}

// postdrop enforces authorized_submit_users; this only gives a clearer message first.
void check_submit_acl(const config::Config& cfg) {
    uid_t uid = getuid();
    auto denied = access::check_user_acl("authorized_submit_users", cfg.get_list("authorized_submit_users"), uid);
    if (denied)
        fatal_status(EX_NOPERM, "User %s(%ld) is not allowed to submit mail", denied->c_str(), static_cast<long>(uid));
}

int dispatch(const config::Config& cfg, Options& o) {
    if (o.queue_interval && o.mode != Mode::Daemon) return 0;
    switch (o.mode) {
        case Mode::Enqueue:
            if (!o.flush_site.empty()) {
                require_no_recipients(o, "flush site");
                run_command(cfg, with_verbose({"postqueue", "-s", o.flush_site}, o.verbose));
            }
            if (!o.flush_id.empty()) {
                require_no_recipients(o, "flush queue_id");
                run_command(cfg, with_verbose({"postqueue", "-i", o.flush_id}, o.verbose));
            }
            check_submit_acl(cfg);
            enqueue(cfg, o);
            return 0;
        case Mode::Mailq:
            require_no_recipients(o, "display queue mode");
            run_command(cfg, with_verbose({"postqueue", "-p"}, o.verbose));
        case Mode::Flush:
            require_no_recipients(o, "flush queue mode");
            run_command(cfg, with_verbose({"postqueue", "-f"}, o.verbose));
        case Mode::Daemon:
            require_no_recipients(o, "daemon mode");
            return run_command_wait(cfg, with_verbose({"postern", "start"}, o.verbose)) == 0 ? 0 : 1;
        case Mode::NewAliases: {
            require_no_recipients(o, "alias initialization mode");
            std::string db = o.alias_database.empty() ? cfg.get("alias_database") : o.alias_database;
            std::vector<std::string> args = with_verbose({"postalias"}, o.verbose);
            for (std::string_view t : split_tokens(db, ", \t\r\n")) args.emplace_back(t);
            if (args.size() == 1 + static_cast<size_t>(o.verbose)) return 0;
            run_command(cfg, args);
        }
        case Mode::Smtp:
            require_no_recipients(o, "stand-alone mode");
            check_submit_acl(cfg);
            return smtp_session(cfg, o);
        case Mode::Ignore: return 0;
    }
    return 0;
}

int run(int argc, char** argv) {
    umask(022);
    open_std_fds();
    const char* slash = strrchr(argv[0], '/');
    std::string program = slash && slash[1] ? slash + 1 : argv[0];
    log::init(program);
    if (getenv("MAIL_VERBOSE")) log::set_verbose(1);
    // -C reaches postdrop and postqueue through the environment, as with Postfix.
    std::string dir = config_dir_from_args(argc, argv);
    if (!dir.empty() && setenv("MAIL_CONFIG", dir.c_str(), 1) != 0)
        fatal_status(EX_UNAVAILABLE, "out of memory");
    auto cfg = config::Config::load(config::config_directory(nullptr), "sendmail");
    if (!cfg) fatal_status(EX_TEMPFAIL, "%s", cfg.error().c_str());
    log::configure_from(*cfg);
    std::string qdir = cfg->get("queue_directory");
    if (chdir(qdir.c_str()) != 0) fatal_status(EX_UNAVAILABLE, "chdir %s: %s", qdir.c_str(), strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    Options o = parse_options(argc, argv, program);
    if (o.verbose > 1 || (o.verbose && o.mode != Mode::Enqueue)) log::set_verbose(o.verbose);
    return dispatch(*cfg, o);
}

}  // namespace

void run_command(const config::Config& cfg, std::vector<std::string> args) {
    std::string path = command_path(cfg, args[0]);
    auto argv = c_args(args);
    execv(path.c_str(), argv.data());
    fatal_status(EX_OSERR, "execv %s: %s", path.c_str(), strerror(errno));
}

int run_command_wait(const config::Config& cfg, std::vector<std::string> args) {
    std::string path = command_path(cfg, args[0]);
    auto argv = c_args(args);
    pid_t pid = fork();
    if (pid < 0) fatal_status(EX_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        execv(path.c_str(), argv.data());
        log::warn("execv %s: %s", path.c_str(), strerror(errno));
        _exit(EX_OSERR);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace postern::sendmail

int main(int argc, char** argv) { return postern::sendmail::run(argc, argv); }
