// postdrop(1): the set-group-ID gate into maildrop/. It reads one message as a record
// stream on stdin (the layout sendmail writes, see src/sendmail/postdrop_stream.h),
// checks every record (types per segment, allowed attributes, sizes), writes a queue
// file in maildrop/ that is complete and fsynced before it answers status=0, and wakes
// pickup. Input that ends before the E record cancels the message; so do HUP, INT, QUIT
// and TERM. Nothing from the caller is trusted: not the time, not the attributes, not
// the environment, not a configuration directory that main.cf did not bless.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "postdrop/postdrop.h"
#include "util/access/user_acl.h"
#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/ipc/attr.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/queue/queue_file.h"

namespace postern::postdrop {
namespace {

// The file to remove when a signal or a fatal error ends us early.
char g_path[4096];

void remove_and_exit(int sig) {
    if (g_path[0]) unlink(g_path);
    g_path[0] = 0;
    _exit(sig ? 128 + sig : 1);
}

void on_signal(int sig) { remove_and_exit(sig); }

void write_reply(const ipc::AttrRecord& rec) {
    std::string wire = ipc::encode_record(rec);
    size_t off = 0;
    while (off < wire.size()) {
        ssize_t n = write(1, wire.data() + off, wire.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the caller went away; the file decides
        off += static_cast<size_t>(n);
    }
}

// Keeps only the variables that import_environment names ("NAME" or "NAME=value").
void clean_environment(const config::Config& cfg) {
    std::vector<std::pair<std::string, std::string>> keep;
    std::vector<std::pair<std::string, std::string>> set;
    for (const std::string& item : cfg.get_list("import_environment")) {
        size_t eq = item.find('=');
        if (eq != std::string::npos) {
            set.emplace_back(item.substr(0, eq), item.substr(eq + 1));
        } else if (const char* v = getenv(item.c_str())) {
            keep.emplace_back(item, v);
        }
    }
    clearenv();
    for (const auto& [k, v] : keep) setenv(k.c_str(), v.c_str(), 1);
    for (const auto& [k, v] : set) setenv(k.c_str(), v.c_str(), 1);
}

bool privileged_caller() { return getuid() != geteuid() || getgid() != getegid(); }

// Postfix 3.2's rule for set-gid programs: a non-default configuration directory must be
// listed in alternate_config_directories of the default main.cf (root may use any).
void check_config_directory(const std::string& dir) {
    if (!privileged_caller() || getuid() == 0) return;
    const char* saved = getenv("MAIL_CONFIG");
    std::string requested = saved ? saved : "";
    unsetenv("MAIL_CONFIG");
    std::string default_dir = config::config_directory(nullptr);
    if (!requested.empty()) setenv("MAIL_CONFIG", requested.c_str(), 1);
    if (dir == default_dir) return;
    auto def = config::Config::load(default_dir, "postdrop");
    if (def)
        for (const std::string& d : def->get_list("alternate_config_directories"))
            if (d == dir) return;
    log::error("untrusted configuration directory name: %s", dir.c_str());
    log::fatal("specify \"alternate_config_directories = %s\" in %s/main.cf", dir.c_str(),
               default_dir.c_str());
}

// Postfix enforces authorized_submit_users here, in the set-gid program.
void check_submit_acl(const config::Config& cfg) {
    auto denied = access::check_user_acl("authorized_submit_users", cfg.get_list("authorized_submit_users"), getuid());
    if (denied) log::fatal("User %s(%ld) is not allowed to submit mail", denied->c_str(), static_cast<long>(getuid()));
}

void wake_pickup(const config::Config& cfg) {
    std::string qdir = cfg.get("queue_directory");
    std::string path = qdir + "/" + std::string(ipc::mail::kPickupSocket);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        log::warn("unable to look up %s: %s", std::string(ipc::mail::kPickupSocket).c_str(), strerror(errno));
        return;
    }
    std::string trigger(1, ipc::mail::kTriggerWakeup);
    Status s = ipc::mail::send_trigger(qdir, ipc::mail::kPickupSocket, trigger, cfg.get_time("trigger_timeout"));
    if (!s) log::warn("%s", s.error().c_str());
}

struct Args {
    const char* config_dir = nullptr;
    int verbose = 0;
};

Args parse_args(int argc, char** argv) {
    Args a;
    for (int c; (c = getopt(argc, argv, "+c:rv")) > 0;) {
        switch (c) {
            case 'c': a.config_dir = optarg; break;
            case 'r': break;  // the record protocol is the only one
            case 'v':
                if (geteuid() == 0) a.verbose++;
                break;
            default: log::fatal("usage: %s [-c config_dir] [-v]", argv[0]);
        }
    }
    return a;
}

int run(int argc, char** argv) {
    umask(022);
    for (int fd = 0; fd < 3; ++fd) {
        struct stat st;
        if (fstat(fd, &st) != 0 && open("/dev/null", O_RDWR) != fd) log::fatal("open /dev/null: %s", strerror(errno));
    }
    // The process name comes from the caller: never trust it.
    argv[0] = const_cast<char*>("postdrop");
    log::init("postdrop");
    Args args = parse_args(argc, argv);
    log::set_verbose(args.verbose);
    if (args.config_dir) setenv("MAIL_CONFIG", args.config_dir, 1);
    std::string dir = config::config_directory(nullptr);
    check_config_directory(dir);
    auto cfg = config::Config::load(dir, "postdrop");
    if (!cfg) log::fatal("%s", cfg.error().c_str());
    log::configure_from(*cfg);
    check_submit_acl(*cfg);
    clean_environment(*cfg);
    std::string qdir = cfg->get("queue_directory");
    if (chdir(qdir.c_str()) != 0) log::fatal("chdir %s: %s", qdir.c_str(), strerror(errno));
    log::debug("chdir %s", qdir.c_str());

    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP})
        if (signal(sig, SIG_IGN) != SIG_IGN || sig == SIGINT || sig == SIGQUIT) signal(sig, on_signal);

    auto layout = queue::Layout::from_config(*cfg);
    if (!layout) log::fatal("%s", layout.error().c_str());
    auto file = queue::QueueFileWriter::create(*layout, queue::kMaildrop);
    if (!file) log::fatal("uid=%ld: %s", static_cast<long>(getuid()), file.error().c_str());
    snprintf(g_path, sizeof g_path, "%s", file->path().c_str());
    write_reply(ipc::AttrRecord().add("queue_id", file->id()));

    Limits limits;
    limits.line_length = static_cast<size_t>(std::max(1L, cfg->get_int("line_length_limit")));
    limits.message_size = cfg->get_int("message_size_limit");
    CopyOutcome out = copy_input(0, *file, limits);
    if (out.status == CopyStatus::Cancelled) {
        Status s = file->abandon();
        if (!s) log::warn("uid=%ld: %s", static_cast<long>(getuid()), s.error().c_str());
        g_path[0] = 0;
        return 0;
    }
    if (out.status == CopyStatus::Malformed) {
        (void)file->abandon();
        g_path[0] = 0;
        log::fatal("uid=%ld: %s", static_cast<long>(getuid()), out.error.c_str());
    }
    long status = 0;
    if (out.status == CopyStatus::Refused) {
        status = out.cleanup_status;
        (void)file->abandon();
    } else if (Status s = file->commit(); !s) {
        log::warn("uid=%ld: %s", static_cast<long>(getuid()), s.error().c_str());
        status = ipc::mail::kCleanupStatWrite;
        (void)file->abandon();
    } else {
        // pickup runs as mail_owner: the file must be readable by others (Postfix: 0744).
        fchmod(file->fd(), 0744);
    }
    g_path[0] = 0;
    if (status == 0) wake_pickup(*cfg);
    write_reply(ipc::AttrRecord().add_long("status", status).add("reason", out.reason));
    return status == 0 ? 0 : 1;
}

}  // namespace
}  // namespace postern::postdrop

int main(int argc, char** argv) { return postern::postdrop::run(argc, argv); }
