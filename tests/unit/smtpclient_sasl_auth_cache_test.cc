#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>

#include "util/smtpclient/sasl_auth_cache.h"
#include "util/table/table.h"

using namespace postern;
using namespace postern::smtpclient;

namespace {

struct ScratchDir {
    std::string dir;
    ScratchDir() {
        char tmpl[] = "/tmp/sasl-cache-test.XXXXXX";
        dir = mkdtemp(tmpl);
    }
    ~ScratchDir() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("sasl auth cache: Postfix's key and value formats", "[smtp_sasl_cache]") {
    CHECK(SaslAuthCache::key("mx.example", "joe") == "mx.example;joe");
    CHECK(SaslAuthCache::password_hash("secret") == "5en6G6MezRroT3XKqkdPOmY/BfQ=");
    CHECK(SaslAuthCache::value("secret", "5.7.8", "535 5.7.8 Error: authentication failed", 1700000000) ==
          "1700000000;5en6G6MezRroT3XKqkdPOmY/BfQ=;5.7.8;535 5.7.8 Error: authentication failed");
}

TEST_CASE("sasl auth cache: the name must start with proxy: and be one table", "[smtp_sasl_cache]") {
    auto bad = SaslAuthCache::open("btree:/tmp/x", 60);
    REQUIRE(!bad);
    CHECK(bad.error() == "SASL authentication cache name \"btree:/tmp/x\" must start with \"proxy:");
    auto two = SaslAuthCache::open("proxy:btree:/a, proxy:btree:/b", 60);
    REQUIRE(!two);
    CHECK(two.error() == "SASL authentication cache name \"proxy:btree:/a, proxy:btree:/b\" contains multiple values");
}

TEST_CASE("sasl auth cache: a stored 535 is found for the same password until it expires", "[smtp_sasl_cache]") {
    ScratchDir d;
    auto cache = SaslAuthCache::open("proxy:btree:" + d.dir + "/cache", 100);
    REQUIRE(cache);
    CHECK(!cache->find("mx.example", "joe", "wrong", 1000));  // created empty
    cache->store("mx.example", "joe", "wrong", "5.7.8", "535 5.7.8 Error: authentication failed: bad", 1000);
    auto hit = cache->find("mx.example", "joe", "wrong", 1050);
    REQUIRE(hit);
    CHECK(hit->dsn == "5.7.8");
    CHECK(hit->text == "535 5.7.8 Error: authentication failed: bad");
    CHECK(!cache->find("other.example", "joe", "wrong", 1050));
    CHECK(!cache->find("mx.example", "ann", "wrong", 1050));
    // the password changed: the entry goes
    CHECK(!cache->find("mx.example", "joe", "fixed", 1050));
    CHECK(!cache->find("mx.example", "joe", "wrong", 1050));
    // expiry: stamp + ttl < now
    cache->store("mx.example", "joe", "wrong", "5.7.8", "535 5.7.8 no", 2000);
    CHECK(cache->find("mx.example", "joe", "wrong", 2100));
    CHECK(!cache->find("mx.example", "joe", "wrong", 2101));
    // the file is Postfix's btree table: a reader sees Postfix's entry format
    cache->store("mx.example", "joe", "pw", "5.7.8", "535 5.7.8 no", 3000);
    auto t = table::open_table("btree:" + d.dir + "/cache");
    REQUIRE(t);
    auto v = (*t)->lookup("mx.example;joe");
    REQUIRE(v.found());
    CHECK(v.value == SaslAuthCache::value("pw", "5.7.8", "535 5.7.8 no", 3000));
}

TEST_CASE("sasl auth cache: a malformed entry is not used and is removed", "[smtp_sasl_cache]") {
    ScratchDir d;
    auto cache = SaslAuthCache::open("proxy:hash:" + d.dir + "/cache", 100);
    REQUIRE(cache);
    cache->store("mx.example", "joe", "pw", "bogus", "535 x", 1000);  // not a status code
    CHECK(!cache->find("mx.example", "joe", "pw", 1000));
    auto t = table::open_table("hash:" + d.dir + "/cache");
    REQUIRE(t);
    CHECK(!(*t)->lookup("mx.example;joe").found());
}
