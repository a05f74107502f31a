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
#include "smtpd/smtpd_check_servers.cc" // NOLINT
#include "smtpd/smtpd_reply_footer.cc"   // NOLINT
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

TEST_CASE("access actions fill MessageActions and log Postfix's lines", "[smtpd_check]") {
    CheckFixture f("smtpd_sender_restrictions = check_sender_access inline:{"
                   "{sender@client.example=HOLD}, {h2@client.example=HOLD held by test}, "
                   "{d@client.example=DISCARD}, {f@client.example=FILTER smtp:[192.0.2.1]}, "
                   "{r@client.example=REDIRECT admin@example.test}, {b@client.example=BCC copy@example.test}, "
                   "{p@client.example=PREPEND X-Tag: yes}, {w@client.example=WARN look}}\n");
    f.facts.transaction.recipient = "root@mx.example.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    CHECK(f.actions().hold == "<sender@client.example>: Sender address triggers HOLD action");
    CHECK(f.log_has("NOQUEUE: hold: RCPT from client.example[127.0.0.9]: <sender@client.example>: Sender address "
                    "triggers HOLD action; from=<sender@client.example> to=<root@mx.example.test>"));
    f.session->reset_transaction();
    CHECK_FALSE(f.actions().hold);
    for (const char* s : {"h2", "d", "f", "r", "b", "p", "w"}) {
        f.facts.transaction.sender = std::string(s) + "@client.example";
        CHECK(f.check(CheckPoint::Rcpt).empty());
    }
    CHECK(f.actions().hold == "<h2@client.example>: Sender address held by test");
    CHECK(f.actions().discard == "<d@client.example>: Sender address triggers DISCARD action");
    CHECK(f.actions().filter == "smtp:[192.0.2.1]");
    CHECK(f.actions().redirect == "admin@example.test");
    CHECK(f.actions().bcc == "copy@example.test");
    CHECK(f.actions().prepend_headers == std::vector<std::string>{"X-Tag: yes"});
    CHECK(f.log_has("NOQUEUE: filter: RCPT from client.example[127.0.0.9]: <f@client.example>: Sender address "
                    "triggers FILTER smtp:[192.0.2.1];"));
    CHECK(f.log_has("NOQUEUE: warn: RCPT from client.example[127.0.0.9]: look; from=<w@client.example>"));
}

TEST_CASE("recipient validation: local, virtual alias, virtual mailbox and relay tables", "[smtpd_check]") {
    CheckFixture f("local_recipient_maps = inline:{root=x}\n"
                   "virtual_alias_domains = alias.test\nvirtual_alias_maps = inline:{a@alias.test=root}\n"
                   "virtual_mailbox_domains = box.test\nvirtual_mailbox_maps = inline:{m@box.test=m/}\n"
                   "relay_domains = relay.test\nrelay_recipient_maps = inline:{ok@relay.test=x}\n"
                   "recipient_delimiter = +\n");
    auto rcpt = [&f](const char* r) {
        f.facts.transaction.recipient = r;
        return f.check(CheckPoint::Rcpt);
    };
    CHECK(rcpt("root@mx.example.test").empty());
    CHECK(rcpt("root+ext@mx.example.test").empty());
    CHECK(rcpt("ROOT@MX.EXAMPLE.TEST").empty());
    CHECK(rcpt("nobody@mx.example.test") ==
          "550 5.1.1 <nobody@mx.example.test>: Recipient address rejected: User unknown in local recipient table");
    CHECK(rcpt("a@alias.test").empty());
    CHECK(rcpt("b@alias.test") ==
          "550 5.1.1 <b@alias.test>: Recipient address rejected: User unknown in virtual alias table");
    CHECK(rcpt("m@box.test").empty());
    CHECK(rcpt("n@box.test") ==
          "550 5.1.1 <n@box.test>: Recipient address rejected: User unknown in virtual mailbox table");
    CHECK(rcpt("ok@relay.test").empty());
    CHECK(rcpt("no@relay.test") ==
          "550 5.1.1 <no@relay.test>: Recipient address rejected: User unknown in relay recipient table");
    // VRFY runs the same checks.
    f.facts.transaction.recipient = "nobody@mx.example.test";
    CHECK(f.check(CheckPoint::Vrfy).rfind("550 5.1.1 <nobody@mx.example.test>", 0) == 0);
}

TEST_CASE("smtpd_sender_login_maps restrictions", "[smtpd_check]") {
    CheckFixture f("smtpd_sender_login_maps = inline:{{owned@client.example=bob, alice}}\n"
                   "smtpd_sender_restrictions = reject_sender_login_mismatch\n");
    f.facts.transaction.recipient = "root@mx.example.test";
    f.facts.transaction.sender = "owned@client.example";
    CHECK(f.check(CheckPoint::Rcpt) == "553 5.7.1 <owned@client.example>: Sender address rejected: not logged in");
    f.facts.sasl.method = "PLAIN";
    f.facts.sasl.username = "alice";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    f.facts.sasl.username = "mallory";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "553 5.7.1 <owned@client.example>: Sender address rejected: not owned by user mallory");
    f.facts.transaction.sender = "free@client.example";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "553 5.7.1 <free@client.example>: Sender address rejected: not owned by user mallory");
    CheckFixture g("smtpd_sender_login_maps = inline:{{owned@client.example=bob}}\n"
                   "smtpd_sender_restrictions = reject_known_sender_login_mismatch\n");
    g.facts.transaction.recipient = "root@mx.example.test";
    g.facts.sasl.method = "PLAIN";
    g.facts.sasl.username = "mallory";
    g.facts.transaction.sender = "free@client.example";
    CHECK(g.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("mynetworks: networks, exclusions, IPv6 and mapped addresses", "[smtpd_check]") {
    using postern::smtpd::check::NetList;
    auto list = NetList::create("mynetworks", {"!127.0.0.5", "127.0.0.0/29", "[2001:db8::]/32", "192.0.2.1"});
    REQUIRE(list.ok());
    CHECK(list->match("127.0.0.1") == NetList::Match::Yes);
    CHECK(list->match("127.0.0.5") == NetList::Match::No);
    CHECK(list->match("127.0.0.9") == NetList::Match::No);
    CHECK(list->match("2001:db8::25") == NetList::Match::Yes);
    CHECK(list->match("::ffff:192.0.2.1") == NetList::Match::Yes);
    CHECK_FALSE(NetList::create("mynetworks", {"127.0.0.0/33"}).ok());
    CHECK_FALSE(NetList::create("mynetworks", {"bogus"}).ok());
}

TEST_CASE("reject_unauth_pipelining, reject_multi_recipient_bounce, non-FQDN addresses", "[smtpd_check]") {
    CheckFixture f("smtpd_data_restrictions = reject_unauth_pipelining, reject_multi_recipient_bounce\n"
                   "smtpd_sender_restrictions = reject_non_fqdn_sender\n");
    f.facts.improper_pipelining = true;
    CHECK(f.check(CheckPoint::Data) ==
          "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining");
    f.facts.improper_pipelining = false;
    f.facts.transaction.sender = "";
    f.facts.transaction.recipients = {{"a@mx.example.test", "", "", 0}, {"b@mx.example.test", "", "", 0}};
    CHECK(f.check(CheckPoint::Data) == "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce");
    CHECK(f.log_has("NOQUEUE: reject: DATA from client.example[127.0.0.9]: 550 5.5.3 <DATA>: Data command "
                    "rejected: Multi-recipient bounce; from=<> to=<b@mx.example.test> proto=ESMTP"));
    f.facts.transaction.sender = "user";
    f.facts.transaction.recipient = "root@mx.example.test";
    CHECK(f.check(CheckPoint::Rcpt) == "504 5.5.2 <user>: Sender address rejected: need fully-qualified address");
}

TEST_CASE("smtpd_reject_unlisted_sender and permit_tls_clientcerts", "[smtpd_check]") {
    CheckFixture f("smtpd_reject_unlisted_sender = yes\nlocal_recipient_maps = inline:{root=x}\n");
    f.facts.transaction.recipient = "root@mx.example.test";
    f.facts.transaction.sender = "ghost@mx.example.test";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "550 5.1.0 <ghost@mx.example.test>: Sender address rejected: User unknown in local recipient table");
    f.facts.transaction.sender = "root@mx.example.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());

    CheckFixture g("relay_clientcerts = inline:{{AB:CD=client one}}\n"
                   "smtpd_relay_restrictions = permit_tls_clientcerts, reject_unauth_destination\n");
    g.facts.transaction.recipient = "user@remote.example";
    g.facts.tls.active = true;
    g.facts.tls.peer_cert_present = true;
    g.facts.tls.peer_cert_fingerprint = "AB:CD";
    CHECK(g.check(CheckPoint::Rcpt) == "554 5.7.1 <user@remote.example>: Relay access denied");  // not verified
    g.facts.tls.peer_cert_verified = true;
    CHECK(g.check(CheckPoint::Rcpt).empty());
    g.facts.tls.peer_cert_fingerprint = "EF:01";
    CHECK(g.check(CheckPoint::Rcpt) == "554 5.7.1 <user@remote.example>: Relay access denied");
}

TEST_CASE("check_sasl_access and check_ccert_access", "[smtpd_check]") {
    CheckFixture f("smtpd_sender_restrictions = check_sasl_access inline:{{bad=REJECT}, {good=OK}}, "
                   "check_ccert_access inline:{{AB:CD=REJECT no such cert}}\n"
                   "smtpd_relay_restrictions = reject_unauth_destination\n");
    f.facts.transaction.recipient = "root@mx.example.test";
    f.facts.sasl.method = "PLAIN";
    f.facts.sasl.username = "bad";
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <bad>: SASL login name rejected: Access denied");
    f.facts.sasl.username = "someone";
    f.facts.tls.active = f.facts.tls.peer_cert_verified = true;
    f.facts.tls.peer_cert_fingerprint = "AB:CD";
    CHECK(f.check(CheckPoint::Rcpt) ==
          "554 5.7.1 <client.example[127.0.0.9]>: Client certificate rejected: no such cert");
    f.facts.sasl.username = "good";  // OK ends the sender list before the certificate check
    CHECK(f.check(CheckPoint::Rcpt).empty());
}

TEST_CASE("reject footer: new lines repeat the code and DSN, \\c continues the last line", "[smtpd_check]") {
    std::map<std::string, std::string> macros = {{"client_address", "192.0.2.1"}, {"server_name", "mx.example"}};
    CHECK(add_reply_footer("550 5.1.1 <u@x>: User unknown", "Call $server_name\\nAddress ${client_address}", macros) ==
          "550-5.1.1 <u@x>: User unknown\n550-5.1.1 Call mx.example\n550 5.1.1 Address 192.0.2.1");
    CHECK(add_reply_footer("421-first\n421 second", "\\c (from $client_address)", macros) ==
          "421-first\n421 second (from 192.0.2.1)");
    CHECK(add_reply_footer("503 Error: need RCPT", "x$unknown", macros) == "503-Error: need RCPT\n503 x");
    CHECK(add_reply_footer("not a reply", "footer", macros) == "not a reply");
}
