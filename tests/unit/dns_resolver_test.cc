// dns::Resolver (c-ares on libevent) and lookup_client_names against a dnsmasq fixture.
#include <catch2/catch.hpp>

#include <event2/event.h>

#include "dns_fixture.h"
#include "util/dns/client_names.h"
#include "util/dns/resolver.h"

using namespace postern;

namespace {

struct Loop {
    Loop() : base(event_base_new()) {}
    ~Loop() {
        resolver.reset();
        event_base_free(base);
    }
    void start(const std::string& servers) {
        dns::Options o;
        o.servers = servers;
        o.timeout_ms = 1000;
        o.tries = 1;
        auto r = dns::Resolver::create(base, o);
        REQUIRE(r.ok());
        resolver = std::move(*r);
    }
    dns::Answer ask(const std::string& name, dns::Type type) {
        dns::Answer out;
        bool done = false;
        resolver->query(name, type, [&](const dns::Answer& a) {
            out = a;
            done = true;
        });
        CHECK_FALSE(done);  // never from inside query()
        while (!done) event_base_loop(base, EVLOOP_ONCE);
        return out;
    }
    event_base* base;
    std::unique_ptr<dns::Resolver> resolver;
};

}  // namespace

TEST_CASE("reverse_address and ptr_name", "[dns]") {
    CHECK(dns::reverse_address("127.0.0.2") == "2.0.0.127");
    CHECK(dns::ptr_name("192.0.2.1") == "1.2.0.192.in-addr.arpa");
    CHECK(dns::ptr_name("2001:db8::1") ==
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    CHECK(dns::reverse_address("not-an-address").empty());
    CHECK(dns::canonical_address("::ffff:127.0.0.9") == "127.0.0.9");
}

TEST_CASE("resolver: A, AAAA, MX, PTR, TXT and failures", "[dns]") {
    test::DnsServer server;
    REQUIRE(server.running());
    Loop loop;
    loop.start(server.servers());
    auto a = loop.ask("mail.example.test", dns::Type::A);
    REQUIRE(a.ok());
    CHECK(a.records == std::vector<std::string>{"127.0.0.9"});
    auto aaaa = loop.ask("v6.example.test", dns::Type::AAAA);
    REQUIRE(aaaa.ok());
    CHECK(aaaa.records == std::vector<std::string>{"2001:db8::1"});
    auto mx = loop.ask("mxdomain.test", dns::Type::MX);
    REQUIRE(mx.ok());
    REQUIRE(mx.mx.size() == 2);
    CHECK(mx.mx[0].preference == 5);
    CHECK(mx.mx[0].host == "mail2.example.test");
    CHECK(mx.mx[1].host == "mail.example.test");
    auto ptr = loop.ask("9.0.0.127.in-addr.arpa", dns::Type::PTR);
    REQUIRE(ptr.ok());
    CHECK(ptr.records.front() == "good.example.test");
    auto txt = loop.ask("2.0.0.127.rbl.test", dns::Type::TXT);
    REQUIRE(txt.ok());
    CHECK(txt.records == std::vector<std::string>{"listed for testing"});
    CHECK(loop.ask("nx.test", dns::Type::A).rcode == dns::Rcode::NotFound);
    CHECK(loop.ask("mail.example.test", dns::Type::MX).rcode == dns::Rcode::NoData);
    CHECK(loop.ask("x.tempfail.test", dns::Type::A).rcode == dns::Rcode::TempFail);
    CHECK(loop.resolver->pending() == 0);
}

TEST_CASE("resolver: a dead server is a temporary failure", "[dns]") {
    Loop loop;
    loop.start("127.0.0.1:9");
    CHECK(loop.ask("mail.example.test", dns::Type::A).rcode == dns::Rcode::TempFail);
}

TEST_CASE("resolver: destroying it with queries in flight calls no callback", "[dns]") {
    test::DnsServer server;
    Loop loop;
    loop.start(server.servers());
    bool called = false;
    loop.resolver->query("mail.example.test", dns::Type::A, [&](const dns::Answer&) { called = true; });
    loop.resolver.reset();
    event_base_loop(loop.base, EVLOOP_NONBLOCK);
    CHECK_FALSE(called);
}

TEST_CASE("lookup_client_names: forward-confirmed, mismatched and missing names", "[dns]") {
    test::DnsServer server;
    Loop loop;
    loop.start(server.servers());
    auto names = [&](const char* addr) {
        dns::ClientNames out;
        bool done = false;
        dns::lookup_client_names(*loop.resolver, addr, [&](const dns::ClientNames& n) {
            out = n;
            done = true;
        });
        while (!done) event_base_loop(loop.base, EVLOOP_ONCE);
        return out;
    };
    auto good = names("127.0.0.9");
    CHECK(good.name == "good.example.test");
    CHECK(good.reverse_name == "good.example.test");
    CHECK(good.name_status == dns::NameStatus::Ok);
    auto mismatch = names("127.0.0.10");
    CHECK(mismatch.name == "unknown");
    CHECK(mismatch.reverse_name == "nomatch.example.test");
    CHECK(mismatch.name_status == dns::NameStatus::PermFail);
    CHECK(mismatch.reverse_name_status == dns::NameStatus::Ok);
    auto none = names("127.0.0.11");
    CHECK(none.name == "unknown");
    CHECK(none.reverse_name == "unknown");
    CHECK(none.reverse_name_status == dns::NameStatus::PermFail);
}
