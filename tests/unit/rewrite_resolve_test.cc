// trivial-rewrite's rules: "rewrite" cases from Postfix's rewrite_clnt.ref (in internal
// form) and "resolve" cases for each address class, transport_maps and relocated_maps.
#include <catch2/catch.hpp>

#include "util/ipc/mail_proto.h"
#include "util/rewrite/match_list.h"
#include "util/rewrite/resolve.h"
#include "util/rewrite/rewrite.h"

using namespace postern;
using namespace postern::rewrite;
namespace mail = postern::ipc::mail;

namespace {

const char* kBase =
    "myhostname = host.example.com\n"
    "mydomain = example.com\n"
    "inet_interfaces = loopback-only\n"
    "compatibility_level = 3.6\n";

config::Config make_config(const std::string& extra) {
    auto c = config::Config::from_text(std::string(kBase) + extra, "/etc/postern/main.cf", "trivial-rewrite");
    REQUIRE(c.ok());
    return std::move(*c);
}

std::unique_ptr<Resolver> make_resolver(const std::string& extra) {
    auto r = Resolver::create(make_config(extra));
    REQUIRE(r.ok());
    return std::move(*r);
}

}  // namespace

TEST_CASE("rewrite local: append @myorigin, swap bang paths, percent hack", "[rewrite]") {
    RewriteContext ctx = RewriteContext::local(make_config(""));
    CHECK(rewrite_address(ctx, "joe") == "joe@host.example.com");
    CHECK(rewrite_address(ctx, "joe@example.org") == "joe@example.org");
    CHECK(rewrite_address(ctx, "a!b") == "b@a");
    CHECK(rewrite_address(ctx, "a!b!c") == "b!c@a");
    CHECK(rewrite_address(ctx, "a%b") == "a@b");
    CHECK(rewrite_address(ctx, "a%b%c") == "a%b@c");
    CHECK(rewrite_address(ctx, "a@b@c") == "a@b@c");
    CHECK(rewrite_address(ctx, "@r1,@r2:joe@x") == "joe@x");
    CHECK(rewrite_address(ctx, "joe@x.") == "joe@x");
    CHECK(rewrite_address(ctx, "") == "");
    CHECK(rewrite_address(ctx, "joe@host") == "joe@host");  // append_dot_mydomain=no at level 3.6
}

TEST_CASE("rewrite: a quoted local part hides routing operators", "[rewrite]") {
    RewriteContext ctx = RewriteContext::local(make_config(""));
    CHECK(rewrite_address(ctx, "a b!c") == "a b!c@host.example.com");
    CHECK(rewrite_address(ctx, "a b%c") == "a b%c@host.example.com");
}

TEST_CASE("rewrite: Postfix's rewrite_clnt.ref cases", "[rewrite]") {
    RewriteContext ctx = RewriteContext::local(make_config("append_dot_mydomain = yes\n"));
    CHECK(rewrite_address(ctx, "!") == "@");
    CHECK(rewrite_address(ctx, "a!") == "@a.example.com");
    CHECK(rewrite_address(ctx, "!b") == "b@");
    CHECK(rewrite_address(ctx, "a!b") == "b@a.example.com");
    CHECK(rewrite_address(ctx, "%") == "@");
    CHECK(rewrite_address(ctx, "a%") == "a@");
    CHECK(rewrite_address(ctx, "%b") == "@b.example.com");
    CHECK(rewrite_address(ctx, "a%b") == "a@b.example.com");
    // Postfix's lone "@" is external form; the internal "@" is ""@ and stays.
    CHECK(rewrite_address(ctx, "@") == "@");
    CHECK(rewrite_address(ctx, "a@") == "a@");
    CHECK(rewrite_address(ctx, "a@.") == "a@.");
    CHECK(rewrite_address(ctx, "a@b") == "a@b.example.com");
    CHECK(rewrite_address(ctx, "a@b.") == "a@b");
    CHECK(rewrite_address(ctx, "a@[1.2.3.4]") == "a@[1.2.3.4]");
}

TEST_CASE("rewrite remote: remote_header_rewrite_domain or nothing", "[rewrite]") {
    RewriteContext none = RewriteContext::remote(make_config(""));
    CHECK(rewrite_address(none, "joe") == "joe");
    CHECK(rewrite_address(none, "a!b") == "b@a");
    RewriteContext dom = RewriteContext::remote(make_config("remote_header_rewrite_domain = example.net\n"));
    CHECK(rewrite_address(dom, "joe") == "joe@example.net");
    CHECK(rewrite_address(dom, "joe@host") == "joe@host");
}

TEST_CASE("match lists: exclusions, tables, parent domains", "[rewrite]") {
    auto l = MatchList::create("relay_domains", {"!bad.example.com", "example.com", ".example.net"},
                               MatchStyle::DomainParent);
    REQUIRE(l.ok());
    CHECK(l->match("example.com") == Match::Yes);
    CHECK(l->match("Sub.Example.COM") == Match::Yes);
    CHECK(l->match("bad.example.com") == Match::No);
    CHECK(l->match("example.net") == Match::No);
    CHECK(l->match("a.example.net") == Match::Yes);
    auto s = MatchList::create("mydestination", {"example.com", "inline:{ t.example=x }"}, MatchStyle::String);
    REQUIRE(s.ok());
    CHECK(s->match("sub.example.com") == Match::No);
    CHECK(s->match("T.example") == Match::Yes);
    auto d = MatchList::create("relay_domains", {"inline:{ example.org=x }"}, MatchStyle::DomainParent);
    REQUIRE(d.ok());
    CHECK(d->match("a.b.example.org") == Match::Yes);
    CHECK(!MatchList::create("x", {"nosuchtype:/x"}, MatchStyle::String).ok());
}

TEST_CASE("resolve: local class for mydestination, bare users and own literals", "[rewrite]") {
    auto r = make_resolver("");
    mail::ResolveReply a = r->resolve("", "joe");
    CHECK(a.transport == "local");
    CHECK(a.nexthop == "host.example.com");
    CHECK(a.recipient == "joe@host.example.com");
    CHECK(a.flags == (mail::kResolveClassLocal | mail::kResolveFlagFinal));
    a = r->resolve("", "Joe@LOCALHOST");
    CHECK(a.transport == "local");
    CHECK(a.recipient == "Joe@LOCALHOST");
    CHECK(a.nexthop == "host.example.com");
    a = r->resolve("", "joe@[127.0.0.1]");
    CHECK((a.flags & mail::kResolveClassLocal) != 0);
    a = r->resolve("", "joe@host.example.com.");
    CHECK(a.recipient == "joe@host.example.com");
    a = r->resolve("", "");
    CHECK(a.recipient == "MAILER-DAEMON@host.example.com");
    CHECK(a.transport == "local");
}

TEST_CASE("resolve: default class, relayhost, bad domains", "[rewrite]") {
    auto r = make_resolver("");
    mail::ResolveReply a = r->resolve("", "joe@remote.example");
    CHECK(a.transport == "smtp");
    CHECK(a.nexthop == "remote.example");
    CHECK(a.flags == mail::kResolveClassDefault);
    a = r->resolve("", "joe@");
    CHECK((a.flags & mail::kResolveFlagFail) != 0);
    a = r->resolve("", "joe@1.2.3.4");
    CHECK((a.flags & mail::kResolveFlagFail) != 0);
    a = r->resolve("", "joe@bad_-.example");
    CHECK((a.flags & mail::kResolveFlagFail) != 0);
    auto rh = make_resolver("relayhost = [relay.example.net]\n");
    a = rh->resolve("", "joe@remote.example");
    CHECK(a.nexthop == "[relay.example.net]");
    CHECK(rh->resolve("", "joe").nexthop == "host.example.com");
    auto num = make_resolver("resolve_numeric_domain = yes\n");
    a = num->resolve("", "joe@1.2.3.4");
    CHECK(a.recipient == "joe@[1.2.3.4]");
    CHECK(a.flags == mail::kResolveClassDefault);
    a = num->resolve("", "joe@127.0.0.1");
    CHECK((a.flags & mail::kResolveClassLocal) != 0);
}

TEST_CASE("resolve: routing through the local domain", "[rewrite]") {
    auto r = make_resolver("");
    mail::ResolveReply a = r->resolve("", "user%remote.example@host.example.com");
    CHECK(a.recipient == "user@remote.example");
    CHECK(a.transport == "smtp");
    CHECK(a.nexthop == "remote.example");
    a = r->resolve("", "remote.example!user@host.example.com");
    CHECK(a.recipient == "user@remote.example");
    a = r->resolve("", "user@remote.example@host.example.com");
    CHECK(a.recipient == "user@remote.example");
    CHECK(a.nexthop == "remote.example");
    a = r->resolve("", "a@b@remote.example");
    CHECK(a.recipient == "a@b@remote.example");
    CHECK((a.flags & mail::kResolveFlagRouted) != 0);
    auto nohack = make_resolver("allow_percent_hack = no\nswap_bangpath = no\n");
    a = nohack->resolve("", "user%remote.example@host.example.com");
    CHECK(a.recipient == "user%remote.example@host.example.com");
    CHECK(a.transport == "local");
    CHECK((a.flags & mail::kResolveFlagRouted) != 0);
}

TEST_CASE("resolve: virtual alias, virtual mailbox and relay classes", "[rewrite]") {
    auto r = make_resolver(
        "virtual_alias_domains = alias.example\n"
        "virtual_mailbox_domains = vbox.example\n"
        "relay_domains = relay.example\n");
    mail::ResolveReply a = r->resolve("", "x@alias.example");
    CHECK(a.transport == "error");
    CHECK(a.nexthop == "5.1.1 User unknown in virtual alias table");
    CHECK(a.flags == (mail::kResolveClassAlias | mail::kResolveFlagFinal));
    a = r->resolve("", "x@vbox.example");
    CHECK(a.transport == "virtual");
    CHECK(a.nexthop == "vbox.example");
    CHECK(a.flags == (mail::kResolveClassVirtual | mail::kResolveFlagFinal));
    a = r->resolve("", "x@sub.relay.example");
    CHECK(a.transport == "relay");
    CHECK(a.nexthop == "sub.relay.example");
    CHECK(a.flags == mail::kResolveClassRelay);
    auto quiet = make_resolver("virtual_alias_domains = alias.example\nshow_user_unknown_table_name = no\n");
    CHECK(quiet->resolve("", "x@alias.example").nexthop == "5.1.1 User unknown");
}

TEST_CASE("resolve: transport_maps results and search order", "[rewrite]") {
    auto r = make_resolver(
        "recipient_delimiter = +\n"
        "transport_maps = inline:{ remote.example=smtp:[mx.remote.example]:2525, "
        "slow.example=slow:, gw.example=:[gw.example], .sub.example=uucp:sub, "
        "user@list.example=lmtp:unix:private/lmtp, host.example.com=: }\n");
    mail::ResolveReply a = r->resolve("", "joe@remote.example");
    CHECK(a.transport == "smtp");
    CHECK(a.nexthop == "[mx.remote.example]:2525");
    a = r->resolve("", "a@slow.example");
    CHECK(a.transport == "slow");
    CHECK(a.nexthop == "slow.example");
    a = r->resolve("", "a@gw.example");
    CHECK(a.transport == "smtp");
    CHECK(a.nexthop == "[gw.example]");
    a = r->resolve("", "a@x.sub.example");
    CHECK(a.transport == "uucp");
    CHECK(r->resolve("", "a@sub.example").transport == "smtp");
    a = r->resolve("", "user+tag@list.example");
    CHECK(a.transport == "lmtp");
    CHECK(a.nexthop == "unix:private/lmtp");
    a = r->resolve("", "joe");  // "host.example.com :" changes nothing
    CHECK(a.transport == "local");
    CHECK(a.nexthop == "host.example.com");
    auto wild = make_resolver("transport_maps = inline:{ *=smtp:[outbound.example] }\n");
    CHECK(wild->resolve("", "a@b.example").nexthop == "[outbound.example]");
    CHECK(wild->resolve("", "a@b.example").transport == "smtp");
}

TEST_CASE("resolve: relocated users, sender-dependent routes, verify", "[rewrite]") {
    auto r = make_resolver(
        "relocated_maps = inline:{ old@host.example.com=new@else.example }\n"
        "sender_dependent_relayhost_maps = inline:{ @sender.example=[sd.example] }\n"
        "sender_dependent_default_transport_maps = inline:{ vip@sender.example=fast: }\n"
        "address_verify_relayhost = [verify.example]\n");
    mail::ResolveReply a = r->resolve("", "old");
    CHECK(a.transport == "error");
    CHECK(a.nexthop == "5.1.6 User has moved to new@else.example");
    a = r->resolve("a@sender.example", "x@remote.example");
    CHECK(a.nexthop == "[sd.example]");
    CHECK(a.transport == "smtp");
    a = r->resolve("vip@sender.example", "x@remote.example");
    CHECK(a.transport == "fast");
    CHECK(r->resolve("", "x@remote.example", true).nexthop == "[verify.example]");
    CHECK(r->resolve("", "x@remote.example", false).nexthop == "remote.example");
}

TEST_CASE("resolve: a null transport fails the request", "[rewrite]") {
    auto r = make_resolver("default_transport =\n");
    CHECK(r->resolve("", "x@remote.example").flags == mail::kResolveFlagError);
}

TEST_CASE("hostname syntax as valid_hostname", "[rewrite]") {
    CHECK(valid_hostname("example.com"));
    CHECK(valid_hostname("a_b.example"));
    CHECK(valid_hostname("123abc"));
    CHECK_FALSE(valid_hostname("1.2.3.4"));
    CHECK_FALSE(valid_hostname("-a.example"));
    CHECK_FALSE(valid_hostname("a-.example"));
    CHECK_FALSE(valid_hostname("a..b"));
    CHECK_FALSE(valid_hostname("a.b."));
    CHECK_FALSE(valid_hostname(""));
    CHECK_FALSE(valid_hostname(std::string(64, 'a') + ".com"));
    CHECK(valid_mailhost_literal("[192.0.2.1]"));
    CHECK(valid_mailhost_literal("[IPv6:2001:db8::1]"));
    CHECK_FALSE(valid_mailhost_literal("[2001:db8::1]"));
    CHECK_FALSE(valid_mailhost_literal("[host]"));
}
