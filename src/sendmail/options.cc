// Sendmail's command line, as Postfix's sendmail reads it: getopt without permutation
// (the first non-option ends the options), -q on its own means "flush", and the many
// options that only Sendmail needs are accepted and ignored.
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sendmail/sendmail.h"
#include "util/base/strings.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::sendmail {
namespace {

constexpr const char* kGetoptList = "+A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx";

bool all_printable(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

void parse_notify(Options& o, const char* arg) {
    o.notify = ipc::mail::parse_notify(arg);
    if (o.notify != 0) return;
    for (std::string_view word : split_tokens(arg, ", \t"))
        if (!ipc::mail::parse_notify(word)) {
            log::warn("unknown DSN NOTIFY command value \"%.*s\" in \"%s\"",
                      static_cast<int>(word.size()), word.data(), arg);
            break;
        }
    log::warn("bad -N option value -- ignored");
}

void parse_b(Options& o, char c) {
    switch (c) {
        case 'd':
        case 'l': o.mode = Mode::Daemon; break;
        case 'h':
        case 'H': o.mode = Mode::Ignore; break;
        case 'i': o.mode = Mode::NewAliases; break;
        case 'm': o.mode = Mode::Enqueue; break;
        case 'p': o.mode = Mode::Mailq; break;
        case 's': o.mode = Mode::Smtp; break;
        case 'v': o.trace_flags |= kTraceVerify; break;
        default: fatal_status(EX_USAGE, "unsupported: -b%c", c);
    }
}

void parse_o(Options& o, const char* arg) {
    switch (arg[0]) {
        case 'A':
            if (arg[1] == 0) fatal_status(EX_USAGE, "-oA requires pathname");
            o.alias_database = arg + 1;
            break;
        case 'i': o.dot_ends_input = false; break;
        default: log::debug("-o%c option ignored", arg[0]); break;
    }
}

void parse_q(Options& o, const char* arg) {
    if (isdigit(static_cast<unsigned char>(arg[0]))) {
        o.queue_interval = true;
    } else if (arg[0] == 'R') {
        o.flush_site = arg + 1;
        if (o.flush_site.empty()) fatal_status(EX_USAGE, "specify: -qRsitename");
    } else if (arg[0] == 'I') {
        o.flush_id = arg + 1;
        if (o.flush_id.empty()) fatal_status(EX_USAGE, "specify: -qIqueueid");
    } else {
        fatal_status(EX_USAGE, "-q%c is not implemented", arg[0]);
    }
}

void parse_option(Options& o, int c, const char* arg, const char* program) {
    switch (c) {
        case 'n': fatal_status(EX_USAGE, "-%c option not supported", c);
        case 'B':
            if (strcmp(arg, "8BITMIME") == 0) o.encoding = "8bit";
            else if (strcmp(arg, "7BIT") == 0) o.encoding = "7bit";
            else fatal_status(EX_USAGE, "-B option needs 8BITMIME or 7BIT");
            break;
        case 'F': o.full_name = arg; break;
        case 'G': o.rewrite_context = "remote"; break;
        case 'I': o.mode = Mode::NewAliases; break;
        case 'N': parse_notify(o, arg); break;
        case 'R':
            if (iequals(arg, "full")) o.ret = ipc::mail::kRetFull;
            else if (iequals(arg, "hdrs")) o.ret = ipc::mail::kRetHeaders;
            else log::warn("bad -R option value -- ignored");
            break;
        case 'V':
            if (strlen(arg) > 100) log::warn("too long -V option value -- ignored");
            else if (!all_printable(arg)) log::warn("bad syntax in -V option value -- ignored");
            else o.envid = arg;
            break;
        case 'X':
            // VERP (-XV) needs a queue-file record that Postern's queue does not carry.
            if (arg[0] == 'V') log::warn("-XV (VERP) is not supported -- ignored");
            else fatal_status(EX_USAGE, "unsupported: -X%c", arg[0]);
            break;
        case 'b': parse_b(o, arg[0]); break;
        case 'f':
        case 'r': o.sender = arg; break;
        case 'i': o.dot_ends_input = false; break;
        case 'o': parse_o(o, arg); break;
        case 'q': parse_q(o, arg); break;
        case 't': o.extract = true; break;
        case 'v': o.verbose++; break;
        case '?': fatal_status(EX_USAGE, "usage: %s [options]", program);
        default: log::debug("-%c option ignored", c); break;
    }
}

void check_conflicts(Options& o) {
    if (o.extract && o.mode != Mode::Enqueue)
        fatal_status(EX_USAGE, "-t can be used only in delivery mode");
    if (!o.flush_site.empty() && o.mode != Mode::Enqueue)
        fatal_status(EX_USAGE, "-qR can be used only in delivery mode");
    if (!o.flush_id.empty() && o.mode != Mode::Enqueue)
        fatal_status(EX_USAGE, "-qI can be used only in delivery mode");
    if (o.trace_flags & kTraceVerify) {
        if (o.extract) fatal_status(EX_USAGE, "-t option cannot be used with -bv");
        if (o.notify) fatal_status(EX_USAGE, "-N option cannot be used with -bv");
        if (o.verbose == 1) fatal_status(EX_USAGE, "-v option cannot be used with -bv");
    }
    // One -v asks for a delivery report; more than one means verbose logging.
    if (o.verbose == 1 && o.mode == Mode::Enqueue) {
        o.verbose = 0;
        o.trace_flags |= kTraceRecord;
    }
}

}  // namespace

std::string config_dir_from_args(int argc, char** argv) {
    std::string dir;
    for (int i = 1; i < argc && argv[i][0] == '-'; ++i) {
        std::string_view a = argv[i];
        if (a == "--") break;
        if (a.substr(0, 2) != "-C") continue;
        std::string value = a.size() > 2 ? std::string(a.substr(2)) : (i + 1 < argc ? argv[++i] : "");
        // -C takes main.cf itself or its directory.
        size_t slash = value.rfind('/');
        std::string base = slash == std::string::npos ? value : value.substr(slash + 1);
        if (base == "main.cf") value = slash == std::string::npos ? "." : value.substr(0, slash);
        dir = value;
    }
    return dir;
}

Options parse_options(int argc, char** argv, std::string_view program) {
    Options o;
    if (program == "mailq") o.mode = Mode::Mailq;
    else if (program == "newaliases") o.mode = Mode::NewAliases;
    else if (program == "smtpd") o.mode = Mode::Daemon;
    std::string prog(program);
    optind = 1;
    opterr = 1;
    while (optind < argc) {
        if (strcmp(argv[optind], "-q") == 0) {  // not getopt compatible
            if (o.mode == Mode::Daemon) log::warn("ignoring -q option in daemon mode");
            else o.mode = Mode::Flush;
            optind++;
            continue;
        }
        int c = getopt(argc, argv, kGetoptList);
        if (c < 0) break;
        parse_option(o, c, optarg, prog.c_str());
    }
    for (int i = optind; i < argc; ++i) o.recipients.emplace_back(argv[i]);
    check_conflicts(o);
    return o;
}

std::string login_name() {
    if (struct passwd* pw = getpwuid(getuid())) return pw->pw_name;
    return "";
}

// Postfix's fullname(): $NAME, else the GECOS field up to the first comma, with '&'
// standing for the capitalized login name.
std::string default_full_name() {
    if (const char* name = getenv("NAME"); name && *name) return name;
    struct passwd* pw = getpwuid(getuid());
    if (!pw || !pw->pw_gecos) return "";
    std::string gecos = pw->pw_gecos;
    gecos = gecos.substr(0, gecos.find(','));
    std::string out;
    for (char c : gecos) {
        if (c != '&') {
            out += c;
            continue;
        }
        std::string login = pw->pw_name;
        if (!login.empty()) login[0] = static_cast<char>(toupper(static_cast<unsigned char>(login[0])));
        out += login;
    }
    return out;
}

}  // namespace postern::sendmail
