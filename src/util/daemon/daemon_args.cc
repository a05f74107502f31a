#include "util/daemon/daemon_args.h"

#include "util/base/strings.h"

namespace postern::daemon {
namespace {

// Options that take a value.
bool takes_value(char c) { return c == 'n' || c == 't' || c == 's' || c == 'o'; }

Status apply_value(DaemonArgs& out, char opt, const std::string& value) {
    switch (opt) {
        case 'n':
            out.service_name = value;
            return {};
        case 't':
            if (value != "inet" && value != "unix" && value != "unix-dgram" && value != "fifo" &&
                value != "pass")
                return make_error("unknown transport type: " + value);
            out.transport = value;
            return {};
        case 's': {
            long n = 0;
            if (!parse_long(value, n) || n < 1 || n > 1000)
                return make_error("invalid socket_count: " + value);
            out.listen_count = static_cast<int>(n);
            return {};
        }
        case 'o': {
            size_t eq = value.find('=');
            if (eq == std::string::npos || eq == 0)
                return make_error("-o: missing '=' in \"" + value + "\"");
            out.overrides.push_back({std::string(trim(value.substr(0, eq))),
                                     std::string(trim(value.substr(eq + 1)))});
            return {};
        }
    }
    return make_error(std::string("invalid option -- '") + opt + "'");
}

Status apply_flag(DaemonArgs& out, char opt) {
    switch (opt) {
        case 'u': out.unprivileged = true; return {};
        case 'c': out.chroot = true; return {};
        case 'v': ++out.verbose; return {};
        case 'l': out.solitary = true; return {};
        case 'z': out.zero_limit = true; return {};
        case 'S': out.stdin_mode = true; return {};
        // Postfix also passes -d (debug, stay in foreground) and -D; harmless here.
        case 'd':
        case 'D': return {};
    }
    return make_error(std::string("invalid option -- '") + opt + "'");
}

}  // namespace

Result<DaemonArgs> parse_daemon_args(const std::vector<std::string>& argv) {
    DaemonArgs out;
    size_t i = 1;
    for (; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') break;
        for (size_t k = 1; k < a.size(); ++k) {
            char c = a[k];
            if (!takes_value(c)) {
                if (Status st = apply_flag(out, c); !st) return make_error(st.error());
                continue;
            }
            std::string value;
            if (k + 1 < a.size()) {
                value = a.substr(k + 1);
            } else if (i + 1 < argv.size()) {
                value = argv[++i];
            } else {
                return make_error(std::string("option requires an argument -- '") + c + "'");
            }
            if (Status st = apply_value(out, c, value); !st) return make_error(st.error());
            break;
        }
    }
    for (; i < argv.size(); ++i) out.args.push_back(argv[i]);
    if (out.service_name.empty() && !argv.empty()) {
        // Run by hand without -n: the service is named after the program, as in Postfix.
        std::string_view prog = argv[0];
        size_t slash = prog.rfind('/');
        out.service_name = std::string(slash == std::string_view::npos ? prog : prog.substr(slash + 1));
    }
    return out;
}

std::vector<std::string> build_daemon_args(const DaemonArgs& args) {
    std::vector<std::string> out = {"-n", args.service_name, "-t", args.transport};
    if (args.unprivileged) out.push_back("-u");
    if (args.chroot) out.push_back("-c");
    if (args.listen_count != 1) {
        out.push_back("-s");
        out.push_back(std::to_string(args.listen_count));
    }
    for (int v = 0; v < args.verbose; ++v) out.push_back("-v");
    if (args.solitary) out.push_back("-l");
    if (args.zero_limit) out.push_back("-z");
    for (const auto& o : args.overrides) {
        out.push_back("-o");
        out.push_back(o.name + "=" + o.value);
    }
    for (const auto& a : args.args) out.push_back(a);
    return out;
}

}  // namespace postern::daemon
