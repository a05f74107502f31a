// master(8): Postern's process manager, as Postfix's master.
//
//   master [-dtvw] [-c config_dir]
//     -c dir   read main.cf and master.cf from dir (else MAIL_CONFIG, else the default)
//     -d       stay in the foreground (do not detach)
//     -t       test mode: exit 0 when no master runs for this instance, 1 when one does
//     -v       verbose logging (also passed to the daemons)
//     -w       detach, but wait until master is ready; exit 1 when it failed to start
//
// The pid goes to queue_directory/pid/master.pid, which stays locked while master runs,
// so a second master of the same instance refuses to start. SIGHUP re-reads main.cf and
// master.cf; SIGTERM stops every child and exits.
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "master/master.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/log_config.h"

namespace postern::master {
namespace {

constexpr const char* kVersion = "0.1";

struct Options {
    const char* config_dir = nullptr;
    bool foreground = false;
    bool test_lock = false;
    bool wait_ready = false;
    int verbose = 0;
};

Options parse_options(int argc, char** argv) {
    Options o;
    int c;
    while ((c = getopt(argc, argv, "c:dDtvwe:s")) != -1) {
        switch (c) {
            case 'c': o.config_dir = optarg; break;
            case 'd': o.foreground = true; break;
            case 't': o.test_lock = true; break;
            case 'v': ++o.verbose; break;
            case 'w': o.wait_ready = true; break;
            case 'D':
            case 'e':
            case 's': break;  // Postfix's debugger, exit-time and stdin options: not used
            default: log::fatal("usage: %s [-c config_dir] [-d] [-t] [-v] [-w]", argv[0]);
        }
    }
    if (optind < argc) log::fatal("command-line argument count error");
    return o;
}

struct Loaded {
    config::Config config;
    MasterSettings settings;
    config::MasterCf cf;
};

Result<Loaded> load_instance(const std::string& dir, int verbose) {
    auto cfg = config::Config::load(dir, "master");
    if (!cfg) return make_error(cfg.error());
    auto settings = read_settings(*cfg, dir);
    if (!settings) return make_error(settings.error());
    settings->verbose = verbose;
    auto cf = config::load_master_cf(dir, settings->process_limit);
    if (!cf) return make_error(cf.error());
    for (const std::string& w : cf->warnings) log::warn("%s", w.c_str());
    return Loaded{std::move(*cfg), std::move(*settings), std::move(*cf)};
}

// Opens and locks pid/master.pid; an invalid fd when another master holds the lock.
UniqueFd lock_pid_file(const std::string& path, std::string& why) {
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) {
        why = std::strerror(errno);
        return {};
    }
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd.get(), F_SETLK, &fl) < 0) {
        why = std::string("unable to set exclusive lock: ") + std::strerror(errno == EACCES ? EAGAIN : errno);
        return {};
    }
    return fd;
}

void write_pid(int fd, const std::string& path) {
    std::string text = strprintf("%*lu\n", static_cast<int>(sizeof(unsigned long) * 4),
                                 static_cast<unsigned long>(getpid()));
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        log::fatal("cannot update lock file %s: %s", path.c_str(), std::strerror(errno));
}

// Detaches from the terminal. With -w the parent waits for the child's "ready" byte on
// `ready_fd` and exits 1 when the child died first.
int detach(bool wait_ready, int& ready_fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) log::fatal("pipe: %s", std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) log::fatal("fork: %s", std::strerror(errno));
    if (pid > 0) {
        close(p[1]);
        if (!wait_ready) _exit(0);
        char b;
        ssize_t n = read(p[0], &b, 1);
        _exit(n == 1 ? 0 : 1);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
    return 0;
}

void quiet_stdio() {
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
    log::Settings s = log::settings();
    s.to_stderr = false;
    log::configure(s);
}

std::string read_main_cf(const std::string& dir) {
    std::ifstream in(dir + "/main.cf", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Runtime {
    event_base* base;
    Master* master;
    std::string config_dir;
    int verbose;
    std::string main_cf;  // as last loaded, to tell whether a reload changed it
    bool stop = false;
};

void on_sighup(evutil_socket_t, short, void* arg) {
    auto* rt = static_cast<Runtime*>(arg);
    auto loaded = load_instance(rt->config_dir, rt->verbose);
    if (!loaded) {
        log::warn("reload failed, keeping the old configuration: %s", loaded.error().c_str());
        return;
    }
    log::configure_from(loaded->config);
    log::reopen();
    log::info("reload -- version %s, configuration %s", kVersion, rt->config_dir.c_str());
    std::string text = read_main_cf(rt->config_dir);
    bool changed = text != rt->main_cf;
    rt->main_cf = std::move(text);
    rt->master->reload(std::move(loaded->settings), loaded->cf, changed);
}

void on_sigterm(evutil_socket_t sig, short, void* arg) {
    auto* rt = static_cast<Runtime*>(arg);
    log::info("terminating on signal %d", static_cast<int>(sig));
    rt->stop = true;
    event_base_loopbreak(rt->base);
}

void on_sigchld(evutil_socket_t, short, void* arg) { static_cast<Runtime*>(arg)->master->reap_children(); }

int run(int argc, char** argv) {
    log::init("master");
    Options opt = parse_options(argc, argv);
    log::set_verbose(opt.verbose);
    std::string dir = config::config_directory(opt.config_dir);
    auto loaded = load_instance(dir, opt.verbose);
    if (!loaded) log::fatal("%s", loaded.error().c_str());
    log::configure_from(loaded->config);
    const std::string& qdir = loaded->settings.queue_directory;
    if (chdir(qdir.c_str()) < 0) log::fatal("chdir %s: %s", qdir.c_str(), std::strerror(errno));
    mkdir("pid", 0755);
    const std::string pid_path = "pid/master.pid";
    std::string why;
    if (opt.test_lock) return lock_pid_file(pid_path, why) ? 0 : 1;

    int ready_fd = -1;
    if (!opt.foreground) detach(opt.wait_ready, ready_fd);
    // fcntl locks belong to the process, so the lock is taken after the fork.
    UniqueFd lock = lock_pid_file(pid_path, why);
    if (!lock) log::fatal("open lock file %s: %s", pid_path.c_str(), why.c_str());
    write_pid(lock.get(), pid_path);
    signal(SIGPIPE, SIG_IGN);

    event_base* base = event_base_new();
    if (base == nullptr) log::fatal("event_base_new failed");
    {
        Master master(base, loaded->settings);
        Runtime rt{base, &master, dir, opt.verbose, read_main_cf(dir)};
        EventPtr hup(evsignal_new(base, SIGHUP, on_sighup, &rt));
        EventPtr term(evsignal_new(base, SIGTERM, on_sigterm, &rt));
        EventPtr intr(evsignal_new(base, SIGINT, on_sigterm, &rt));
        EventPtr chld(evsignal_new(base, SIGCHLD, on_sigchld, &rt));
        for (event* e : {hup.get(), term.get(), intr.get(), chld.get()}) event_add(e, nullptr);
        master.configure(loaded->cf);
        // Logged once every endpoint exists, so "started" means clients can connect.
        log::info("daemon started -- version %s, configuration %s", kVersion, dir.c_str());
        if (ready_fd >= 0) {
            if (write(ready_fd, "", 1) < 0) log::debug("ready pipe: %s", std::strerror(errno));
            close(ready_fd);
            quiet_stdio();
        }
        while (!rt.stop) event_base_loop(base, EVLOOP_ONCE);
        master.stop_all(5);
    }
    event_base_free(base);
    return 0;
}

}  // namespace
}  // namespace postern::master

int main(int argc, char** argv) { return postern::master::run(argc, argv); }
