// postern(1): start, stop and check a Postern mail system, as Postfix's postfix(1).
//
//   postern [-Dv] [-c config_dir] command
//
// Commands: start, start-fg, stop, abort, reload, flush, check, status,
// set-permissions. Unlike postfix(1) it is not reserved for the superuser: run by
// another user it controls a sandbox instance whose files and daemons all belong to
// that user.
#include <getopt.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "postern/postern.h"
#include "util/log/log.h"

namespace postern::ctl {
namespace {

struct Verb {
    std::string_view name;
    int (*run)(Instance&);
};

constexpr Verb kVerbs[] = {
    {"start", cmd_start},   {"start-fg", cmd_start_fg},
    {"stop", cmd_stop},     {"abort", cmd_abort},
    {"reload", cmd_reload}, {"flush", cmd_flush},
    {"check", cmd_check},   {"status", cmd_status},
    {"set-permissions", cmd_set_permissions},
};

constexpr const char* kUsage =
    "Usage: postern start (or stop, reload, abort, flush, check, status, set-permissions, "
    "start-fg)";

Options parse_options(int argc, char** argv) {
    Options o;
    const char* dir = nullptr;
    int c;
    while ((c = getopt(argc, argv, "c:Dv")) != -1) {
        switch (c) {
            case 'c': dir = optarg; break;
            case 'D': o.debug = true; break;
            case 'v': ++o.verbose; break;
            default: log::fatal("usage: postern [-c config_dir] [-Dv] command");
        }
    }
    // -c must name an absolute directory: master and the daemons it starts read it
    // from their own working directory (Postfix's postfix(1) insists likewise).
    if (dir != nullptr && dir[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) == nullptr) log::fatal("getcwd: %s", std::strerror(errno));
        o.config_dir = std::string(cwd) + "/" + dir;
    } else {
        o.config_dir = config::config_directory(dir);
    }
    return o;
}

int run(int argc, char** argv) {
    log::init("postern");
    Options opt = parse_options(argc, argv);
    log::set_verbose(opt.verbose);
    std::string_view name = optind < argc ? argv[optind] : "";
    const Verb* verb = nullptr;
    for (const Verb& v : kVerbs)
        if (v.name == name) verb = &v;
    auto inst = load_instance(opt);
    if (!inst) log::fatal("%s", inst.error().c_str());
    use_script_logging(inst->config);
    if (verb == nullptr)
        log::fatal("unknown command: '%.*s'. %s", static_cast<int>(name.size()), name.data(), kUsage);
    if (optind + 1 < argc) log::fatal("command '%s' takes no arguments. %s", argv[optind], kUsage);
    return verb->run(*inst);
}

}  // namespace
}  // namespace postern::ctl

int main(int argc, char** argv) { return postern::ctl::run(argc, argv); }
