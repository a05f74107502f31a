#include <catch2/catch.hpp>

#include "util/base/base64.h"

using namespace postern;

TEST_CASE("base64 encodes the RFC 4648 test vectors", "[base64]") {
    CHECK(base64::encode("") == "");
    CHECK(base64::encode("f") == "Zg==");
    CHECK(base64::encode("fo") == "Zm8=");
    CHECK(base64::encode("foo") == "Zm9v");
    CHECK(base64::encode("foob") == "Zm9vYg==");
    CHECK(base64::encode("fooba") == "Zm9vYmE=");
    CHECK(base64::encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64 decodes the RFC 4648 test vectors", "[base64]") {
    CHECK(base64::decode("") == std::string());
    CHECK(base64::decode("Zg==") == std::string("f"));
    CHECK(base64::decode("Zm8=") == std::string("fo"));
    CHECK(base64::decode("Zm9v") == std::string("foo"));
    CHECK(base64::decode("Zm9vYg==") == std::string("foob"));
    CHECK(base64::decode("Zm9vYmE=") == std::string("fooba"));
    CHECK(base64::decode("Zm9vYmFy") == std::string("foobar"));
}

TEST_CASE("base64 round-trips binary data with NULs (AUTH PLAIN)", "[base64]") {
    std::string plain("\0user\0secret", 12);
    CHECK(base64::encode(plain) == "AHVzZXIAc2VjcmV0");
    CHECK(base64::decode("AHVzZXIAc2VjcmV0") == plain);
    std::string all;
    for (int i = 0; i < 256; ++i) all += char(i);
    CHECK(base64::decode(base64::encode(all)) == all);
}

TEST_CASE("base64 decode rejects garbage", "[base64]") {
    CHECK_FALSE(base64::decode("Zg="));        // length not a multiple of 4
    CHECK_FALSE(base64::decode("Zg"));         // missing padding
    CHECK_FALSE(base64::decode("Zm9v!mFy"));   // character outside the alphabet
    CHECK_FALSE(base64::decode("Zm 9v"));      // whitespace
    CHECK_FALSE(base64::decode("Zm9v\r\n"));
    CHECK_FALSE(base64::decode("Z=9v"));       // padding in the middle
    CHECK_FALSE(base64::decode("Zg==Zm9v"));   // padding then data
    CHECK_FALSE(base64::decode("Z==="));       // three pad characters
    CHECK_FALSE(base64::decode("===="));
    CHECK_FALSE(base64::decode("Zh=="));       // non-zero pad bits
    CHECK_FALSE(base64::decode("Zm9="));
    CHECK_FALSE(base64::decode("*"));          // the AUTH cancel token is not base64
}
