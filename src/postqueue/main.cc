// postqueue(1): -p / -j list the queue, -f flushes it, -s site and -i queue_id ask for
// delivery of one destination's or one message's deferred mail. Options, errors and exit
// statuses are Postfix's.
#include <arpa/inet.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "postqueue/postqueue.h"
#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/queue/queue_id.h"
#include "util/access/user_acl.h"
#include "util/rewrite/match_list.h"

namespace postern::postqueue {

bool valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    size_t label = 0;
    bool non_numeric = false;
    for (size_t i = 0; i < name.size(); ++i) {
        auto ch = static_cast<unsigned char>(name[i]);
        bool last = i + 1 == name.size();
        if (isalnum(ch) || ch == '_') {
            if (++label > 63) return false;
            if (!isdigit(ch)) non_numeric = true;
        } else if (ch == '.') {
            if (label == 0 || last) return false;
            label = 0;
        } else if (ch == '-') {
            non_numeric = true;
            if (++label == 1 || last || name[i + 1] == '.') return false;
        } else {
            return false;
        }
    }
    return non_numeric;
}

bool valid_mailhost_literal(std::string_view literal) {
    if (literal.size() < 3 || literal.front() != '[' || literal.back() != ']') return false;
    std::string inner(literal.substr(1, literal.size() - 2));
    unsigned char buf[16];
    if (istarts_with(inner, "IPv6:"))
        return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
    return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

namespace {

enum class Mode { None, List, Json, Flush, FlushSite, FlushFile };

struct Options {
    Mode mode = Mode::None;
    std::string site, id;
    const char* config_dir = nullptr;
};

[[noreturn]] void usage() {
    fatal("usage: postqueue -f | postqueue -i queueid | postqueue -j | "
                           "postqueue -p | postqueue -s site");
}

void set_mode(Options& o, Mode m) {
    if (o.mode != Mode::None) usage();
    o.mode = m;
}

Options parse_args(int argc, char** argv) {
    Options o;
    int ch;
    while ((ch = getopt(argc, argv, "c:fi:jps:v")) > 0) {
        switch (ch) {
            case 'c': o.config_dir = optarg; break;
            case 'f': set_mode(o, Mode::Flush); break;
            case 'i': set_mode(o, Mode::FlushFile); o.id = optarg; break;
            case 'j': set_mode(o, Mode::Json); break;
            case 'p': set_mode(o, Mode::List); break;
            case 's': set_mode(o, Mode::FlushSite); o.site = optarg; break;
            // Only the superuser may make postqueue verbose, as in Postfix.
            case 'v': if (geteuid() == 0) log::set_verbose(log::verbose() + 1); break;
            default: usage();
        }
    }
    if (optind < argc) usage();
    return o;
}

// Writes one piece of the listing; false when the reader went away (EPIPE).
bool put(const std::string& text) {
    if (fwrite(text.data(), 1, text.size(), stdout) == text.size() && fflush(stdout) == 0)
        return true;
    if (errno != EPIPE) fatal("output write error: %s", strerror(errno));
    return false;
}

// Root and mail_owner: they may read the queue and are never subject to the user ACLs.
bool privileged(const config::Config& cfg) {
    uid_t uid = getuid();
    struct passwd* owner = getpwnam(cfg.get("mail_owner").c_str());
    return uid == 0 || (owner && owner->pw_uid == uid);
}

void show_queue(const config::Config& cfg, const queue::Layout& layout, Mode mode) {
    ShowSettings s;
    s.empty_address = cfg.get("empty_address_recipient");
    s.duplicate_filter_limit = cfg.get_int("duplicate_filter_limit");
    s.utf8 = cfg.get_bool("smtputf8_enable");
    s.long_ids = layout.long_ids();
    unsigned long count = 0, total = 0;
    bool open = true;
    auto sink = [&](const ListedMessage& m) {
        if (mode == Mode::Json) return open = put(json_message(m, s.utf8));
        std::string text = count ? "\n" : compat_heading(s.long_ids);
        text += compat_message(m, s.long_ids);
        ++count;
        total += static_cast<unsigned long>(m.size);
        return open = put(text);
    };
    // Root and mail_owner read the queue; everybody else asks showq, as with Postfix.
    if (privileged(cfg) || !list_via_showq(layout, sink)) {
        if (Status st = queue::scan_queues(layout, s, sink); !st) fatal("%s", st.error().c_str());
    }
    if (mode == Mode::List && open) put(compat_summary(count, total));
}

std::string truncated(const std::string& s) {
    return s.size() > 100 ? s.substr(0, 100) + "..." : s;
}

void check_arguments(const Options& o) {
    if (o.mode == Mode::FlushSite) {
        bool ok = !o.site.empty() && o.site[0] == '[' ? valid_mailhost_literal(o.site)
                                                      : valid_hostname(o.site);
        if (!ok)
            fatal("Cannot flush mail queue - invalid destination: \"%s\"",
                         truncated(o.site).c_str());
    }
    if (o.mode == Mode::FlushFile && !queue::id_ok(o.id))
        fatal("Cannot flush queue ID - invalid name: \"%s\"",
                     truncated(o.id).c_str());
}

// Who may list or flush (authorized_mailq_users, authorized_flush_users); root and
// mail_owner are never checked, as in Postfix's postqueue.
void check_user_acl(const config::Config& cfg, const char* param, const char* what) {
    if (privileged(cfg)) return;
    uid_t uid = getuid();
    if (auto user = access::check_user_acl(param, cfg.get_list(param), uid))
        fatal("User %s(%ld) is not allowed to %s the mail queue", user->c_str(),
              static_cast<long>(uid), what);
}

bool listed_in(const std::string& list, std::string_view name) {
    for (std::string_view t : split_tokens(list, ", \t\r\n"))
        if (iequals(t, name)) return true;
    return false;
}

int run(int argc, char** argv) {
    // The name is fixed: argv[0] is chosen by the user (mailq, a link, anything).
    log::init("postqueue");
    signal(SIGPIPE, SIG_IGN);
    Options o = parse_args(argc, argv);
    auto cfg = config::Config::load(config::config_directory(o.config_dir), "postqueue");
    if (!cfg) fatal("%s", cfg.error().c_str());
    log::configure_from(*cfg);
    auto layout = queue::Layout::from_config(*cfg);
    if (!layout) fatal("%s", layout.error().c_str());
    if (chdir(layout->queue_directory().c_str()) != 0)
        fatal("chdir %s: %s", layout->queue_directory().c_str(),
                     strerror(errno));
    check_arguments(o);
    if (o.mode == Mode::None) usage();
    if (o.mode == Mode::List || o.mode == Mode::Json)
        check_user_acl(*cfg, "authorized_mailq_users", "view");
    else
        check_user_acl(*cfg, "authorized_flush_users", "flush");
    switch (o.mode) {
        case Mode::List:
        case Mode::Json: show_queue(*cfg, *layout, o.mode); break;
        case Mode::Flush: flush_queue(*layout); break;
        case Mode::FlushFile: flush_file(*layout, o.id); break;
        case Mode::FlushSite: {
            bool parent = listed_in(cfg->get("parent_domain_matches_subdomains"),
                                    "fast_flush_domains");
            auto domains = rewrite::MatchList::create(
                "fast_flush_domains", cfg->get_list("fast_flush_domains"),
                parent ? rewrite::MatchStyle::DomainParent : rewrite::MatchStyle::Domain);
            if (!domains) fatal("%s", domains.error().c_str());
            flush_site(FlushContext{*layout, *domains}, o.site);
            break;
        }
        case Mode::None: usage();
    }
    return 0;
}

}  // namespace
}  // namespace postern::postqueue

int main(int argc, char** argv) { return postern::postqueue::run(argc, argv); }
