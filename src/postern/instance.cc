// The instance postern controls: main.cf, its directories, master's pid file, and
// running the master program.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "postern/postern.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"
#include "util/log/log_config.h"

namespace postern::ctl {

Result<Instance> load_instance(const Options& options) {
    auto cfg = config::Config::load(options.config_dir, "postern");
    if (!cfg) return make_error(cfg.error());
    Instance inst{options, std::move(*cfg), {}, {}, {}, {}, {}, false, {}, {}};
    const config::Config& c = inst.config;
    for (const char* name : {"queue_directory", "daemon_directory", "command_directory",
                             "data_directory"}) {
        auto v = c.try_get(name);
        if (!v) return make_error(v.error());
        if (v->empty() || (*v)[0] != '/')
            return make_error(std::string("file ") + c.main_cf_path() + ": parameter " + name +
                              ": value must be an absolute pathname: \"" + *v + "\"");
    }
    inst.queue_directory = c.get("queue_directory");
    inst.daemon_directory = c.get("daemon_directory");
    inst.command_directory = c.get("command_directory");
    inst.data_directory = c.get("data_directory");
    auto layout = queue::Layout::from_config(c);
    if (!layout) return make_error(layout.error());
    inst.layout = std::move(*layout);
    inst.sandbox = geteuid() != 0;
    if (inst.sandbox) {
        inst.owners = queue::current_user_ownership();
    } else if (auto owners = queue::resolve_ownership(c); owners) {
        inst.owners = *owners;
    } else {
        inst.owners_error = owners.error();
    }
    return inst;
}

void use_script_logging(const config::Config& config) {
    log::configure_from(config);
    log::Settings s = log::settings();
    s.tag = s.syslog_name + "/postern-script";
    s.stderr_name = s.tag;
    s.to_stderr = true;
    log::configure(s);
}

std::string pid_file(const Instance& inst) { return inst.queue_directory + "/pid/master.pid"; }

pid_t running_master(const Instance& inst) {
    std::string path = pid_file(inst);
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) fd.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return 0;
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd.get(), F_GETLK, &fl) < 0) {
        log::warn("cannot test lock on %s: %s", path.c_str(), std::strerror(errno));
        return 0;
    }
    return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

int run_master(const Instance& inst, const std::vector<std::string>& args, bool exec_it) {
    std::string program = inst.daemon_directory + "/master";
    std::vector<std::string> argv = {program, "-c", inst.options.config_dir};
    for (int i = 0; i < inst.options.verbose; ++i) argv.push_back("-v");
    if (inst.options.debug) argv.push_back("-D");
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    if (exec_it) {
        execv(program.c_str(), cargv.data());
        log::error("execute %s: %s", program.c_str(), std::strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log::error("fork: %s", std::strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execv(program.c_str(), cargv.data());
        log::error("execute %s: %s", program.c_str(), std::strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace postern::ctl
