#include <catch2/catch.hpp>

#include "util/rewrite/resolve_support.h"
#include "util/sasl/sasl_options.h"
#include "util/smtpclient/sasl_client.h"
#include "util/table/table.h"

using namespace postern;
using namespace postern::smtpclient;

namespace {

std::shared_ptr<table::Table> inline_table(const std::string& spec) {
    auto t = table::open_table(spec, table::kReadOnly | table::kFoldFix);
    REQUIRE(t);
    return std::shared_ptr<table::Table>(std::move(*t));
}

std::string lookup(const std::vector<std::shared_ptr<table::Table>>& tables, const SaslLookup& l) {
    std::vector<table::Table*> raw;
    for (const auto& t : tables) raw.push_back(t.get());
    access::Outcome o = find_sasl_password(raw, l);
    REQUIRE(o.status != access::Outcome::Status::Error);
    return o.found() ? o.value : "";
}

}  // namespace

TEST_CASE("sasl password lookup tries the server name before the next hop", "[smtp_sasl]") {
    auto t = inline_table("inline:{ [relay.example]:587=hop:pw, mx.relay.example=host:pw }");
    SaslLookup l{{}, "mx.relay.example", "[relay.example]:587"};
    CHECK(lookup({t}, l) == "host:pw");
    l.host = "other.example";
    CHECK(lookup({t}, l) == "hop:pw");
    l.dest = "relay.example:587";  // the brackets and port must be written as relayhost has them
    CHECK(lookup({t}, l) == "");
}

TEST_CASE("sender-dependent sasl lookup: address, without extension, local part, @domain, then host",
          "[smtp_sasl]") {
    auto t = inline_table("inline:{ alice@a.example=alice:1, bob=bob:2, @a.example=dom:3, relay.example=host:4 }");
    auto probes = [](const std::string& sender, bool local) { return rewrite::address_probes(sender, "+", local); };
    CHECK(lookup({t}, {probes("alice+x@a.example", false), "relay.example", "[relay.example]"}) == "alice:1");
    CHECK(lookup({t}, {probes("bob@a.example", true), "relay.example", "[relay.example]"}) == "bob:2");
    CHECK(lookup({t}, {probes("bob@a.example", false), "relay.example", "[relay.example]"}) == "dom:3");
    CHECK(lookup({t}, {probes("carol@b.example", false), "relay.example", "[relay.example]"}) == "host:4");
    CHECK(lookup({t}, {{}, "relay.example", "[relay.example]"}) == "host:4");
}

TEST_CASE("sasl password lookup: a regexp table sees only whole keys", "[smtp_sasl]") {
    auto re = inline_table("regexp:{ {/^@a\\.example$/ partial:1}, {/^alice@a\\.example$/ full:2} }");
    auto probes = rewrite::address_probes("carol@a.example", "+", false);
    CHECK(lookup({re}, {probes, "h", "d"}) == "");
    CHECK(lookup({re}, {rewrite::address_probes("alice@a.example", "+", false), "h", "d"}) == "full:2");
}

TEST_CASE("credentials split at the first colon", "[smtp_sasl]") {
    auto c = split_credentials("user@example:pa:ss");
    CHECK(c.user == "user@example");
    CHECK(c.password == "pa:ss");
    CHECK(split_credentials("lonely").password.empty());
}

TEST_CASE("sasl mechanism choice follows the security options", "[smtp_sasl]") {
    using namespace postern::sasl;
    std::vector<std::string> all{"PLAIN", "LOGIN", "CRAM-MD5"};
    CHECK(choose_sasl_mechanism(all, kNoAnonymous) == "CRAM-MD5");
    CHECK(choose_sasl_mechanism(all, kNoPlaintext | kNoAnonymous) == "CRAM-MD5");
    CHECK(choose_sasl_mechanism({"LOGIN", "PLAIN"}, kNoAnonymous) == "LOGIN");
    CHECK(choose_sasl_mechanism({"PLAIN", "LOGIN"}, 0) == "PLAIN");
    CHECK(choose_sasl_mechanism({"PLAIN", "LOGIN"}, kNoPlaintext | kNoAnonymous).empty());
    CHECK(choose_sasl_mechanism(all, kNoDictionary).empty());
    CHECK(choose_sasl_mechanism(all, kNoActive).empty());
    CHECK(choose_sasl_mechanism(all, kMutualAuth).empty());
    CHECK(choose_sasl_mechanism({"GSSAPI", "DIGEST-MD5"}, 0).empty());
}

TEST_CASE("smtp_sasl_mechanism_filter keeps the listed mechanisms", "[smtp_sasl]") {
    auto f = sasl::MechanismFilter::open({"!cram-md5", "static:rest"}, "smtp_sasl_mechanism_filter");
    REQUIRE(f);
    CHECK_FALSE(f->keeps("CRAM-MD5"));
    CHECK(f->keeps("PLAIN"));
    auto only = sasl::MechanismFilter::open({"plain", "login"}, "smtp_sasl_mechanism_filter");
    REQUIRE(only);
    CHECK(only->keeps("LOGIN"));
    CHECK_FALSE(only->keeps("CRAM-MD5"));
}

TEST_CASE("CRAM-MD5 answer of RFC 2195", "[smtp_sasl]") {
    auto answer = cram_md5_response("tim", "tanstaaftanstaaf",
                                    "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    REQUIRE(answer);
    CHECK(*answer == "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    CHECK_FALSE(cram_md5_response("tim", "x", "!!not base64!!"));
}
