// A restriction engine over fake session facts, for the smtpd_check*_test.cc files
// (the engine's sources are compiled into smtpd_check_test.cc). Log lines go to a
// temporary maillog_file that log_has() searches.
#pragma once

#include <event2/event.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "smtpd/smtpd_check_internal.h"
#include "util/config/config.h"
#include "util/dns/resolver.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"

namespace postern::smtpd::test {

class CheckFixture {
public:
    // `main_cf` is added to a base configuration (no local recipient validation unless
    // the test sets local_recipient_maps; trivial-rewrite's classes in-process).
    explicit CheckFixture(const std::string& main_cf, dns::Resolver* dns = nullptr, event_base* base = nullptr) {
        std::string text = "compatibility_level = 3.6\nmyhostname = mx.example.test\nmydomain = example.test\n"
                           "mydestination = localhost, $myhostname\nlocal_recipient_maps =\n"
                           "alias_maps =\ninet_interfaces = loopback-only\n" + main_cf;
        auto c = config::Config::from_text(text, "main.cf");
        REQUIRE(c.ok());
        config_ = std::make_unique<config::Config>(std::move(*c));
        auto r = rewrite::Resolver::create(*config_);
        REQUIRE(r.ok());
        resolver_ = std::move(*r);
        auto resolve = [this](std::string_view sender, std::string_view address)
            -> Result<ipc::mail::ResolveReply> { return resolver_->resolve(sender, address); };
        engine_ = check::create_engine(*config_, base, resolve, dns);
        session = engine_->new_session();
        base_ = base;
        log_path_ = "/tmp/postern-check-test-" + std::to_string(getpid()) + ".log";
        unlink(log_path_.c_str());
        saved_ = log::settings();
        log::Settings s = saved_;
        s.maillog_file = log_path_;
        s.to_stderr = false;
        s.to_syslog = false;
        log::configure(s);
        facts.client.name = facts.client.reverse_name = "client.example";
        facts.client.name_status = facts.client.reverse_name_status = NameStatus::Ok;
        facts.client.address = "127.0.0.9";
        facts.helo_name = "client.example";
        facts.protocol = "ESMTP";
        facts.transaction.mail_given = true;
        facts.transaction.sender = "sender@client.example";
    }
    ~CheckFixture() {
        log::configure(saved_);
        unlink(log_path_.c_str());
    }

    // Runs a check; with an event base, the loop runs until the answer arrives.
    std::string check(CheckPoint point) {
        bool answered = false;
        std::string reply;
        session->check(point, facts, [&](CheckOutcome o) {
            answered = true;
            reply = o.reply;
        });
        while (!answered && base_ != nullptr) event_base_loop(base_, EVLOOP_ONCE);
        REQUIRE(answered);
        return reply;
    }

    bool log_has(const std::string& text) const {
        std::ifstream in(log_path_);
        std::stringstream ss;
        ss << in.rdbuf();
        bool found = ss.str().find(text) != std::string::npos;
        if (!found) UNSCOPED_INFO("log:\n" << ss.str());
        return found;
    }

    SessionFacts facts;
    std::unique_ptr<CheckSession> session;
    const MessageActions& actions() const { return session->actions(); }

private:
    std::unique_ptr<config::Config> config_;
    std::unique_ptr<rewrite::Resolver> resolver_;
    std::unique_ptr<check::EngineImpl> engine_;
    event_base* base_ = nullptr;
    std::string log_path_;
    log::Settings saved_;
};

}  // namespace postern::smtpd::test
