// smtpd(8): the SMTP server. One process serves many sessions on one event loop; each
// session (smtpd_session.h) reads commands through the pure SmtpReader, checks them with
// the restriction engine (smtpd_check.h), and streams the message to cleanup without
// blocking, answering 250 only after cleanup's fsync (which cleanup shares between the
// sessions that finish at the same moment: group commit).
//
//   main.cc              this table of contents: daemon hooks
//   smtpd_settings.*     main.cf parameters, read once
//   smtpd_reader.*       bytes -> command lines / DATA content / BDAT chunks (pure)
//   smtpd_params.*       MAIL/RCPT argument and ESMTP parameter parsing (pure)
//   smtpd_session.*      the session loop, command table, replies, timers, log lines
//   smtpd_commands.cc    HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, ETRN
//   smtpd_transaction.cc DATA, BDAT, Received:, the cleanup hand-off
//   smtpd_tls_auth.cc    STARTTLS, wrapper mode, AUTH
#include <ctime>
#include <map>
#include <memory>

#include "smtpd/smtpd_anvil.h"
#include "smtpd/smtpd_check.h"
#include "smtpd/smtpd_session.h"
#include "util/daemon/server.h"
#include "util/dns/resolver.h"
#include "util/log/log.h"
#include "util/sasl/sasl_server.h"
#include "util/tls/tls_server.h"

using namespace postern;

namespace {

struct Process {
    smtpd::Settings settings;
    std::unique_ptr<smtpd::CheckEngine> checks;
    std::unique_ptr<tls::TlsServerContext> tls;
    std::unique_ptr<sasl::SaslServerFactory> sasl;
    std::unique_ptr<smtpd::AnvilLimits> anvil;
    std::unique_ptr<dns::Resolver> resolver;
    smtpd::ExceptionMatcher bare_lf_exempt;
    smtpd::Services services;
    std::map<uint64_t, std::unique_ptr<smtpd::Session>> sessions;
};

Process process;

smtpd::Session* session_of(daemon::Connection& conn) {
    auto it = process.sessions.find(conn.id());
    return it == process.sessions.end() ? nullptr : it->second.get();
}

// Before the jail: the TLS key, SASL configuration and restriction tables may need root.
void pre_jail_init(daemon::ServerContext& ctx) {
    const config::Config& c = ctx.config();
    process.settings = smtpd::Settings::load(c, ctx.args().service_name);
    const smtpd::Settings& s = process.settings;
    if (s.tls_offered() || s.tls_wrappermode) {
        auto tls = tls::TlsServerContext::from_config(c, "smtpd");
        // Postfix degrades: no STARTTLS offered; from_config has logged the problem.
        if (tls) process.tls = std::move(*tls);
    }
    if (s.sasl_auth_enable) process.sasl = sasl::SaslServerFactory::create(c, ctx.base());
    process.checks = smtpd::CheckEngine::create(c, ctx.base());
    if (s.bare_lf != smtpd::BareLf::Allow) {
        auto exempt = smtpd::make_exception_matcher(c.get_list("smtpd_forbid_bare_newline_exclusions"), true);
        if (!exempt) log::fatal("smtpd_forbid_bare_newline_exclusions: %s", exempt.error().c_str());
        process.bare_lf_exempt = std::move(*exempt);
    }
    // Before the jail: the resolver reads /etc/resolv.conf, the clock its time zone.
    tzset();
    if (s.peername_lookup) {
        auto resolver = dns::Resolver::create(ctx.base());
        if (!resolver)
            log::warn("DNS resolver: %s; client names are \"unknown\"", resolver.error().c_str());
        else
            process.resolver = std::move(*resolver);
    }
    auto anvil = smtpd::AnvilLimits::create(c);
    if (!anvil) log::fatal("%s", anvil.error().c_str());
    process.anvil = std::move(*anvil);
}

void post_jail_init(daemon::ServerContext& ctx) {
    process.services.settings = &process.settings;
    process.services.base = ctx.base();
    process.services.checks = process.checks.get();
    process.services.tls = process.tls.get();
    process.services.sasl = process.sasl.get();
    process.services.anvil = process.anvil.get();
    process.services.bare_lf_exempt = process.bare_lf_exempt;
    process.services.resolver = process.resolver.get();
}

void on_connection(daemon::Connection& conn) {
    auto session = std::make_unique<smtpd::Session>(conn, process.services);
    smtpd::Session* s = session.get();
    process.sessions[conn.id()] = std::move(session);
    s->start();
}

void on_data(daemon::Connection& conn) {
    if (smtpd::Session* s = session_of(conn)) s->on_input();
}

void on_tls_handshake(daemon::Connection& conn) {
    if (smtpd::Session* s = session_of(conn)) s->on_tls_handshake();
}

void on_disconnect(daemon::Connection& conn) {
    auto it = process.sessions.find(conn.id());
    if (it == process.sessions.end()) return;
    it->second->on_disconnect();
    process.sessions.erase(it);
}

}  // namespace

int main(int argc, char** argv) {
    daemon::DaemonHooks hooks;
    hooks.pre_jail_init = pre_jail_init;
    hooks.post_jail_init = post_jail_init;
    hooks.on_connection = on_connection;
    hooks.on_data = on_data;
    hooks.on_tls_handshake = on_tls_handshake;
    hooks.on_disconnect = on_disconnect;
    return daemon::run_multi_server(argc, argv, hooks);
}
