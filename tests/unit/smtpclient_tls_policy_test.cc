// smtp(8)'s per-destination TLS policy: the smtp_tls_policy_maps value syntax, the lookup
// keys (next hop as given, then parent domains), and the DANE fallbacks without DNSSEC.
#include <catch2/catch.hpp>

#include "util/smtpclient/tls_site_policy.h"
#include "util/table/table.h"

using namespace postern;
using namespace postern::smtpclient;
using tls::ClientLevel;

namespace {

std::vector<std::shared_ptr<table::Table>> maps(const std::string& spec) {
    auto t = table::open_table(spec);
    REQUIRE(t.ok());
    return {std::shared_ptr<table::Table>(std::move(*t))};
}

}  // namespace

TEST_CASE("tls policy value names a level and optional attributes", "[tls_policy]") {
    auto p = parse_tls_policy("secure match=mx.example.com:.example.net protocols=>=TLSv1.2 ciphers=high");
    REQUIRE(p.ok());
    CHECK(p->level == ClientLevel::Secure);
    CHECK(p->match == std::vector<std::string>{"mx.example.com", ".example.net"});
    CHECK(p->has_protocols);
    CHECK(p->protocols == ">=TLSv1.2");
    CHECK(p->ciphers == "high");
    CHECK_FALSE(p->has_exclude);

    auto none = parse_tls_policy("NONE");
    REQUIRE(none.ok());
    CHECK(none->level == ClientLevel::None);
    CHECK(parse_tls_policy("dane-only")->level == ClientLevel::DaneOnly);
}

TEST_CASE("tls policy fingerprints are separated by bars", "[tls_policy]") {
    auto p = parse_tls_policy("fingerprint match=AB:CD|EF:01 match=23:45");
    REQUIRE(p.ok());
    CHECK(p->match == std::vector<std::string>{"AB:CD", "EF:01", "23:45"});
}

TEST_CASE("tls policy servername is a host name, hostname or nexthop", "[tls_policy]") {
    auto p = parse_tls_policy("may servername=mx.example.com");
    REQUIRE(p.ok());
    CHECK(p->has_servername);
    CHECK(p->servername == "mx.example.com");
    CHECK(parse_tls_policy("may servername=hostname")->servername == "hostname");
    CHECK_FALSE(parse_tls_policy("may")->has_servername);
    CHECK(parse_tls_policy("may servername=bad..name").error() ==
          "\"servername=bad..name\" specifies an invalid hostname");
}

TEST_CASE("tls policy tafile= may name several trust anchor files", "[tls_policy]") {
    auto p = parse_tls_policy("verify tafile=/etc/a.pem tafile=/etc/b.pem");
    REQUIRE(p);
    CHECK(p->tafiles == std::vector<std::string>{"/etc/a.pem", "/etc/b.pem"});
    CHECK(parse_tls_policy("verify")->tafiles.empty());
}

TEST_CASE("tls policy rejects unknown levels, attributes and misplaced match", "[tls_policy]") {
    CHECK(parse_tls_policy("sometimes").error() == "invalid security level \"sometimes\"");
    CHECK(parse_tls_policy("may colour=blue").error() == "invalid attribute name: \"colour\"");
    CHECK_FALSE(parse_tls_policy("may match=x.example").ok());
    CHECK_FALSE(parse_tls_policy("verify match").ok());
    CHECK_FALSE(parse_tls_policy("").ok());
}

TEST_CASE("tls policy keys: next hop, then parent domains of a plain domain", "[tls_policy]") {
    CHECK(tls_policy_keys("mail.example.com") ==
          std::vector<std::string>{"mail.example.com", ".example.com", ".com"});
    CHECK(tls_policy_keys("[mail.example.com]:587") == std::vector<std::string>{"[mail.example.com]:587"});
    CHECK(tls_policy_keys("example.com:587") == std::vector<std::string>{"example.com:587"});
    CHECK(tls_policy_keys("mail..example.com") == std::vector<std::string>{"mail..example.com"});
    CHECK(tls_policy_keys("example.com.") == std::vector<std::string>{"example.com."});
}

TEST_CASE("tls policy map entry beats the default level, parent domain matches subdomains", "[tls_policy]") {
    auto m = maps("inline:{ {example.com=verify}, {.example.net=secure match=nexthop}, {[relay.test]:587=encrypt} }");
    TlsPolicyInputs in;
    in.maps = &m;
    in.default_level = ClientLevel::May;
    CHECK(tls_policy_for("example.com", "example.com", in).level == ClientLevel::Verify);
    CHECK(tls_policy_for("sub.example.com", "sub.example.com", in).level == ClientLevel::May);
    auto sub = tls_policy_for("a.b.example.net", "a.b.example.net", in);
    CHECK(sub.level == ClientLevel::Secure);
    CHECK(sub.match == std::vector<std::string>{"nexthop"});
    CHECK(sub.nexthop == "a.b.example.net");
    CHECK(tls_policy_for("example.net", "example.net", in).level == ClientLevel::May);
    CHECK(tls_policy_for("[relay.test]:587", "relay.test", in).level == ClientLevel::Encrypt);
    CHECK(tls_policy_for("relay.test", "relay.test", in).level == ClientLevel::May);
}

TEST_CASE("tls policy with a broken entry defers as a configuration problem", "[tls_policy]") {
    auto m = maps("inline:{ example.com=bogus }");
    TlsPolicyInputs in;
    in.maps = &m;
    auto p = tls_policy_for("example.com", "example.com", in);
    CHECK(p.level == ClientLevel::Invalid);
    CHECK(p.dsn == "4.7.5");
    CHECK(p.reason == "client TLS configuration problem");
}

TEST_CASE("dane without DNSSEC answers falls back as Postfix does", "[tls_policy]") {
    TlsPolicyInputs in;
    in.default_level = ClientLevel::Dane;
    CHECK(tls_policy_for("example.com", "example.com", in).level == ClientLevel::Encrypt);
    in.dnssec_lookups = true;
    CHECK(tls_policy_for("example.com", "example.com", in).level == ClientLevel::May);
    in.default_level = ClientLevel::DaneOnly;
    auto only = tls_policy_for("example.com", "example.com", in);
    CHECK(only.level == ClientLevel::Invalid);
    CHECK(only.dsn == "4.7.5");
    CHECK(only.reason == "non DNSSEC destination");
    in.mx_lookup = false;
    CHECK(tls_policy_for("[mx.example.com]", "mx.example.com", in).reason == "no TLSA records found");
    in.dnssec_lookups = false;
    CHECK(tls_policy_for("example.com", "example.com", in).reason == "client TLS configuration problem");
}
