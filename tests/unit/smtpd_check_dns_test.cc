// The DNS-based restrictions against the dnsmasq fixture, through the event loop; reply
// texts as Debian's Postfix 3.7 gives them for the same records.
#include <catch2/catch.hpp>

#include <event2/event.h>

#include "dns_fixture.h"
#include "smtpd_check_test_util.h"
#include "util/dns/resolver.h"

using namespace postern;
using namespace postern::smtpd;
using postern::smtpd::test::CheckFixture;

namespace {

struct DnsLoop {
    DnsLoop() : base(event_base_new()) {
        REQUIRE(server.running());
        dns::Options o;
        o.servers = server.servers();
        o.timeout_ms = 1000;
        o.tries = 1;
        auto r = dns::Resolver::create(base, o);
        REQUIRE(r.ok());
        resolver = std::move(*r);
    }
    ~DnsLoop() {
        resolver.reset();
        event_base_free(base);
    }
    postern::test::DnsServer server;
    event_base* base;
    std::unique_ptr<dns::Resolver> resolver;
};

}  // namespace

TEST_CASE("reject_rbl_client with the TXT reason, filters and rbl_reply_maps", "[smtpd_check_dns]") {
    DnsLoop loop;
    CheckFixture f("smtpd_client_restrictions = reject_rbl_client rbl.test\n", loop.resolver.get(), loop.base);
    f.facts.client.address = "127.0.0.2";
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; listed for testing");
    CHECK(f.log_has("NOQUEUE: reject: RCPT from client.example[127.0.0.2]: 554 5.7.1 Service unavailable; "
                    "Client host [127.0.0.2] blocked using rbl.test; listed for testing; from=<sender@client.example>"));
    f.facts.client.address = "127.0.0.3";
    CHECK(f.check(CheckPoint::Rcpt).empty());

    CheckFixture g("smtpd_client_restrictions = reject_rbl_client rbl.test=127.0.0.2\n", loop.resolver.get(),
                   loop.base);
    g.facts.transaction.recipient = "root@localhost";
    g.facts.client.address = "127.0.0.9";  // listed as 127.0.0.4: filtered out
    CHECK(g.check(CheckPoint::Rcpt).empty());
    CheckFixture h("smtpd_client_restrictions = reject_rbl_client rbl.test=127.0.0.[3..5]\n"
                   "rbl_reply_maps = inline:{{rbl.test=$$rbl_code 5.7.2 go away $$client_address}}\n",
                   loop.resolver.get(), loop.base);
    h.facts.transaction.recipient = "root@localhost";
    CHECK(h.check(CheckPoint::Rcpt) == "554 5.7.2 go away 127.0.0.9");
}

TEST_CASE("permit_dnswl_client and the reject_rhsbl family", "[smtpd_check_dns]") {
    DnsLoop loop;
    CheckFixture f("smtpd_client_restrictions = permit_dnswl_client dnswl.test, reject\n", loop.resolver.get(),
                   loop.base);
    f.facts.transaction.recipient = "root@localhost";
    f.facts.client.address = "127.0.0.2";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    f.facts.client.address = "127.0.0.3";
    CHECK(f.check(CheckPoint::Rcpt).rfind("554 5.7.1 <client.example[127.0.0.3]>", 0) == 0);

    CheckFixture g("smtpd_sender_restrictions = reject_rhsbl_sender rhsbl.test\n"
                   "smtpd_client_restrictions = reject_rhsbl_client rhsbl.test\n",
                   loop.resolver.get(), loop.base);
    g.facts.transaction.recipient = "root@localhost";
    g.facts.client.name = "good.example.test";
    g.facts.transaction.sender = "s@spam.example.test";
    CHECK(g.check(CheckPoint::Rcpt) ==
          "554 5.7.1 Service unavailable; Sender address [s@spam.example.test] blocked using rhsbl.test");
    g.facts.client.name = "client.example";
    CHECK(g.check(CheckPoint::Rcpt) ==
          "554 5.7.1 Service unavailable; Client host [client.example] blocked using rhsbl.test");
}

TEST_CASE("reject_unknown_sender_domain and reject_unknown_recipient_domain", "[smtpd_check_dns]") {
    DnsLoop loop;
    CheckFixture f("smtpd_sender_restrictions = reject_unknown_sender_domain\n"
                   "smtpd_relay_restrictions = reject_unknown_recipient_domain, permit_mynetworks, "
                   "reject_unauth_destination\nmynetworks = 127.0.0.0/8\n",
                   loop.resolver.get(), loop.base);
    f.facts.transaction.sender = "s@nx.test";
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.1.8 <s@nx.test>: Sender address rejected: Domain not found");
    f.facts.transaction.sender = "s@mxdomain.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    f.facts.transaction.recipient = "u@nx.test";
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.1.2 <u@nx.test>: Recipient address rejected: Domain not found");
    f.facts.transaction.recipient = "u@nullmx.test";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "556 5.1.10 <u@nullmx.test>: Recipient address rejected: Domain nullmx.test does not accept mail (nullMX)");
    f.facts.transaction.recipient = "u@mail.example.test";  // an A record, no MX
    CHECK(f.check(CheckPoint::Rcpt).empty());
    // A temporary failure defers only if nothing rejects: defer_if_permit.
    f.facts.transaction.recipient = "u@x.tempfail.test";
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.1.2 <u@x.tempfail.test>: Recipient address rejected: Domain not found");
    f.facts.transaction.recipient = "u@mxdomain.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("reject_unknown_helo_hostname", "[smtpd_check_dns]") {
    DnsLoop loop;
    CheckFixture f("smtpd_helo_restrictions = reject_unknown_helo_hostname\n", loop.resolver.get(), loop.base);
    f.facts.transaction.recipient = "root@localhost";
    f.facts.helo_name = "nx.test";
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.7.1 <nx.test>: Helo command rejected: Host not found");
    f.facts.helo_name = "mxdomain.test";  // MX only
    CHECK(f.check(CheckPoint::Rcpt).empty());
    f.facts.helo_name = "[127.0.0.9]";
    CHECK(f.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("a session destroyed while DNS is pending never calls back", "[smtpd_check_dns]") {
    DnsLoop loop;
    CheckFixture f("smtpd_client_restrictions = reject_rbl_client rbl.test\n", loop.resolver.get(), loop.base);
    f.facts.client.address = "127.0.0.2";
    f.facts.transaction.recipient = "root@localhost";
    bool called = false;
    f.session->check(CheckPoint::Rcpt, f.facts, [&](CheckOutcome) { called = true; });
    CHECK_FALSE(called);
    f.session.reset();
    while (loop.resolver->pending() > 0) event_base_loop(loop.base, EVLOOP_ONCE);
    CHECK_FALSE(called);
}

TEST_CASE("the client name restrictions read the session's name lookups", "[smtpd_check]") {
    CheckFixture f("smtpd_client_restrictions = reject_unknown_reverse_client_hostname, "
                   "reject_unknown_client_hostname\n");
    f.facts.transaction.recipient = "root@localhost";
    f.facts.client.name = "unknown";
    f.facts.client.name_status = NameStatus::PermFail;
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.9]");
    f.facts.client.reverse_name_status = NameStatus::TempFail;
    CHECK(f.check(CheckPoint::Rcpt) ==
          "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.9]");
}
