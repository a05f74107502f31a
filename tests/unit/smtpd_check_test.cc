// The restriction engine with fake session facts: each restriction, smtpd_delay_reject,
// restriction classes, access(5) actions, and the reply and log texts. smtpd is a
// program, not part of libpostern, so the engine's sources are compiled in here; address
// classes come from the in-process trivial-rewrite resolver.
#include <catch2/catch.hpp>

#include <event2/event.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "smtpd/smtpd_check.cc"         // NOLINT: see above
#include "smtpd/smtpd_check_access.cc"  // NOLINT
#include "smtpd/smtpd_check_dns.cc"     // NOLINT
#include "smtpd/smtpd_check_names.cc"   // NOLINT
#include "smtpd/smtpd_check_netlist.cc" // NOLINT
#include "smtpd/smtpd_check_rcpt.cc"    // NOLINT
#include "smtpd/smtpd_check_session.cc" // NOLINT
#include "smtpd/smtpd_check_setup.cc"   // NOLINT
#include "smtpd_check_test_util.h"

using namespace postern;
using namespace postern::smtpd;
using postern::smtpd::test::CheckFixture;

TEST_CASE("default relay restrictions: mynetworks relays, others only to local domains", "[smtpd_check]") {
    CheckFixture f("mynetworks = 127.0.0.1/32\n");
    f.facts.transaction.recipient = "user@remote.example";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "454 4.7.1 <user@remote.example>: Relay access denied");
    CHECK(f.log_has("NOQUEUE: reject: RCPT from client.example[127.0.0.9]: 454 4.7.1 <user@remote.example>: "
                    "Relay access denied; from=<sender@client.example> to=<user@remote.example> proto=ESMTP "
                    "helo=<client.example>"));
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    f.facts.client.address = "127.0.0.1";
    f.facts.transaction.recipient = "user@remote.example";
    CHECK(f.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("reject_unauth_destination and sender-specified routing", "[smtpd_check]") {
    CheckFixture f("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
                   "mynetworks = 127.0.0.1/32\n");
    for (const char* rcpt : {"user%remote.example@localhost", "remote.example!user@localhost",
                             "user@remote.example@localhost"}) {
        f.facts.transaction.recipient = rcpt;
        INFO(rcpt);
        CHECK(f.check(CheckPoint::Rcpt).rfind("554 5.7.1 <", 0) == 0);
    }
    f.facts.transaction.recipient = "user@remote.example@localhost";
    // Replies show the address as received, logs in quoted (external) form.
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <user@remote.example@localhost>: Relay access denied");
    CHECK(f.log_has("to=<\"user@remote.example\"@localhost>"));
}

TEST_CASE("permit, reject, defer and the stage names", "[smtpd_check]") {
    CheckFixture f("smtpd_client_restrictions = reject\nsmtpd_delay_reject = no\n");
    f.facts.transaction = {};
    CHECK(f.check(CheckPoint::Connect) ==
          "554 5.7.1 <client.example[127.0.0.9]>: Client host rejected: Access denied");
    CHECK(f.log_has("NOQUEUE: reject: CONNECT from client.example[127.0.0.9]: 554 5.7.1 "
                    "<client.example[127.0.0.9]>: Client host rejected: Access denied; proto=ESMTP "
                    "helo=<client.example>"));
    CheckFixture g("smtpd_helo_restrictions = defer\nsmtpd_delay_reject = no\n");
    CHECK(g.check(CheckPoint::Helo) == "450 4.3.2 <client.example>: Helo command rejected: Try again later");
    CheckFixture h("smtpd_sender_restrictions = permit_mynetworks, reject\nsmtpd_delay_reject = no\n");
    CHECK(h.check(CheckPoint::Mail) == "554 5.7.1 <sender@client.example>: Sender address rejected: Access denied");
    CheckFixture d("smtpd_data_restrictions = reject\n");
    CHECK(d.check(CheckPoint::Data) == "554 5.7.1 <DATA>: Data command rejected: Access denied");
    CheckFixture e("smtpd_etrn_restrictions = reject\n");
    e.facts.etrn_domain = "example.com";
    CHECK(e.check(CheckPoint::Etrn) == "554 5.7.1 <example.com>: Etrn command rejected: Access denied");
}

TEST_CASE("smtpd_delay_reject moves client, helo and sender verdicts to RCPT", "[smtpd_check]") {
    CheckFixture f("smtpd_client_restrictions = reject\n");
    CHECK(f.check(CheckPoint::Connect).empty());
    CHECK(f.check(CheckPoint::Helo).empty());
    CHECK(f.check(CheckPoint::Mail).empty());
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <client.example[127.0.0.9]>: Client host rejected: Access denied");
    CHECK(f.log_has("NOQUEUE: reject: RCPT from client.example[127.0.0.9]: 554 5.7.1 <client.example[127.0.0.9]>: "
                    "Client host rejected: Access denied; from=<sender@client.example> to=<root@localhost>"));
}

TEST_CASE("OK in one stage ends only that stage", "[smtpd_check]") {
    CheckFixture f("smtpd_client_restrictions = permit\nsmtpd_sender_restrictions = reject\n");
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <sender@client.example>: Sender address rejected: Access denied");
}

TEST_CASE("warn_if_reject logs reject_warning and goes on", "[smtpd_check]") {
    CheckFixture f("smtpd_recipient_restrictions = warn_if_reject, reject, permit\n");
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    CHECK(f.log_has("NOQUEUE: reject_warning: RCPT from client.example[127.0.0.9]: 554 5.7.1 <root@localhost>: "
                    "Recipient address rejected: Access denied;"));
    // Only the next restriction is softened.
    CheckFixture g("smtpd_recipient_restrictions = warn_if_reject, reject_non_fqdn_recipient, reject\n");
    g.facts.transaction.recipient = "root@localhost";
    CHECK(g.check(CheckPoint::Rcpt) == "554 5.7.1 <root@localhost>: Recipient address rejected: Access denied");
}

TEST_CASE("defer_if_permit and defer_if_reject", "[smtpd_check]") {
    CheckFixture f("smtpd_recipient_restrictions = defer_if_permit, permit\n");
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "450 4.7.0 <root@localhost>: Recipient address rejected: defer_if_permit requested");
    CheckFixture g("smtpd_recipient_restrictions = defer_if_reject, reject\n");
    g.facts.transaction.recipient = "root@localhost";
    CHECK(g.check(CheckPoint::Rcpt) ==
          "450 4.7.0 <root@localhost>: Recipient address rejected: defer_if_reject requested");
    CheckFixture h("smtpd_recipient_restrictions = defer_if_reject, permit\n");
    h.facts.transaction.recipient = "root@localhost";
    CHECK(h.check(CheckPoint::Rcpt).empty());
    // A client-stage defer_if_permit survives to RCPT; a later reject wins over it.
    CheckFixture i("smtpd_client_restrictions = defer_if_permit\n"
                   "smtpd_recipient_restrictions = reject_non_fqdn_recipient, permit\n");
    i.facts.transaction.recipient = "root";
    CHECK(i.check(CheckPoint::Rcpt) == "504 5.5.2 <root>: Recipient address rejected: need fully-qualified address");
    i.facts.transaction.recipient = "root@mx.example.test";
    CHECK(i.check(CheckPoint::Rcpt) ==
          "450 4.7.0 <client.example[127.0.0.9]>: Client host rejected: defer_if_permit requested");
}

TEST_CASE("smtpd_restriction_classes", "[smtpd_check]") {
    CheckFixture f("smtpd_restriction_classes = strict, lax\nstrict = reject\nlax = permit\n"
                   "smtpd_recipient_restrictions = check_recipient_access inline:{ {root@localhost=strict}, "
                   "{postmaster@localhost=lax} }, reject_unauth_destination\n");
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <root@localhost>: Recipient address rejected: Access denied");
    f.facts.transaction.recipient = "postmaster@localhost";
    CHECK(f.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("an unknown restriction fails the command with 451 4.3.5", "[smtpd_check]") {
    CheckFixture f("smtpd_recipient_restrictions = permit_mynetwork, reject_unauth_destination\n");
    f.facts.transaction.recipient = "root@localhost";
    CHECK(f.check(CheckPoint::Rcpt) == "451 4.3.5 Server configuration error");
    CHECK(f.log_has("warning: unknown smtpd restriction: \"permit_mynetwork\""));
}
