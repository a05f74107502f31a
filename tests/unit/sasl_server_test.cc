#include <catch2/catch.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "util/base/base64.h"
#include "util/sasl/sasl_options.h"
#include "util/sasl/sasl_server.h"
#include "sasl_test_util.h"

using namespace postern;
using State = sasl::SaslStep::State;

using namespace postern::sasl::test;

TEST_CASE("SASL security options parse as Postfix names them", "[sasl]") {
    auto flags = sasl::parse_security_options({"noanonymous", "NOPLAINTEXT"}, "");
    REQUIRE(flags.ok());
    CHECK(*flags == (sasl::kNoAnonymous | sasl::kNoPlaintext));
    auto bad = sasl::parse_security_options({"noanonymous", "bogus"}, "noanonymous, bogus");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "unknown SASL security options value \"bogus\" in \"noanonymous, bogus\"");
}

TEST_CASE("SASL mechanism filter: first match wins, no match drops", "[sasl]") {
    auto postfix_default = sasl::MechanismFilter::open({"!external", "static:rest"});
    REQUIRE(postfix_default.ok());
    CHECK(postfix_default->apply("EXTERNAL PLAIN LOGIN") == "PLAIN LOGIN");
    auto only = sasl::MechanismFilter::open({"plain", "login"});
    REQUIRE(only.ok());
    CHECK(only->apply("CRAM-MD5 PLAIN LOGIN DIGEST-MD5") == "PLAIN LOGIN");
    auto table = sasl::MechanismFilter::open({"!inline:{cram-md5=x}", "inline:{plain=y, digest-md5=z}"});
    REQUIRE(table.ok());
    CHECK(table->apply("CRAM-MD5 PLAIN LOGIN DIGEST-MD5") == "PLAIN DIGEST-MD5");
    CHECK_FALSE(sasl::MechanismFilter::open({"nosuchtype:/x"}).ok());
    char tmpl[] = "/tmp/sasl-filter.XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(tmpl) << "# mechanisms for submission\n!cram-md5\nlogin, plain\n";
    auto file = sasl::MechanismFilter::open({std::string(tmpl)});
    std::filesystem::remove(tmpl);
    REQUIRE(file.ok());
    CHECK(file->apply("CRAM-MD5 PLAIN LOGIN DIGEST-MD5") == "PLAIN LOGIN");
    CHECK_FALSE(sasl::MechanismFilter::open({"/nonexistent/filter"}).ok());
    CHECK(sasl::MechanismFilter().apply("PLAIN LOGIN") == "PLAIN LOGIN");
    CHECK(sasl::mechanism_listed("PLAIN LOGIN", "login"));
    CHECK_FALSE(sasl::mechanism_listed("PLAIN LOGIN", "CRAM-MD5"));
}

TEST_CASE("SASL PLAIN against a sasldb: good and bad password", "[sasl]") {
    SaslDir dir;
    auto factory = sasl::SaslServerFactory::create(dir.config(), sasl::test::test_base());
    auto server = new_server(*factory);
    auto good = start_now(*server, "PLAIN", std::string("\0test\0secret", 12));
    CHECK(good.state == State::Success);
    CHECK(good.username == "test");

    auto server2 = new_server(*factory);
    auto bad = start_now(*server2, "PLAIN", std::string("\0test\0wrong", 11));
    CHECK(bad.state == State::Failure);
    CHECK(bad.reason == "authentication failure");
    CHECK_FALSE(bad.temporary);
    CHECK(sasl::failure_reply(bad) == "535 5.7.8 Error: authentication failed: authentication failure");
    CHECK(sasl::failure_log_text("unknown[127.0.0.1]", "PLAIN", bad) ==
          "unknown[127.0.0.1]: SASL PLAIN authentication failed: authentication failure, "
          "sasl_username=" + (bad.username.empty() ? std::string("(unavailable)") : bad.username));

    auto server3 = new_server(*factory);
    auto nouser = start_now(*server3, "PLAIN", std::string("\0nobody\0secret", 14));
    CHECK(nouser.state == State::Failure);
    CHECK(nouser.reason == "authentication failure");  // not "user not found"
}

TEST_CASE("SASL PLAIN without initial response, then LOGIN's two challenges", "[sasl]") {
    SaslDir dir;
    auto factory = sasl::SaslServerFactory::create(dir.config(), sasl::test::test_base());
    auto plain = new_server(*factory);
    auto first = start_now(*plain, "plain", std::nullopt);
    REQUIRE(first.state == State::Continue);
    CHECK(first.challenge.empty());
    CHECK(step_now(*plain, std::string("\0test\0secret", 12)).state == State::Success);

    // "AUTH PLAIN =": an empty initial response is a PLAIN message without credentials,
    // which Cyrus refuses (unlike no initial response at all, above).
    auto empty = new_server(*factory);
    auto refused = start_now(*empty, "PLAIN", std::string());
    CHECK(refused.state == State::Failure);
    CHECK(refused.reason == "bad protocol / cancel");
    CHECK_FALSE(refused.temporary);

    auto login = new_server(*factory);
    auto user_prompt = start_now(*login, "LOGIN", std::nullopt);
    REQUIRE(user_prompt.state == State::Continue);
    CHECK(base64::encode(user_prompt.challenge) == "VXNlcm5hbWU6");  // "Username:"
    auto password_prompt = step_now(*login, "test");
    REQUIRE(password_prompt.state == State::Continue);
    CHECK(base64::encode(password_prompt.challenge) == "UGFzc3dvcmQ6");  // "Password:"
    auto done = step_now(*login, "secret");
    CHECK(done.state == State::Success);
    CHECK(done.username == "test");
}

TEST_CASE("SASL security options hide plaintext mechanisms until TLS", "[sasl]") {
    SaslDir dir;
    auto factory = sasl::SaslServerFactory::create(dir.config(
        "smtpd_sasl_security_options = noanonymous, noplaintext\n"
        "smtpd_sasl_tls_security_options = noanonymous\n"), sasl::test::test_base());
    auto clear = new_server(*factory, false);
    CHECK(clear->mechanisms() == "CRAM-MD5 DIGEST-MD5");  // mech_list order
    auto refused = start_now(*clear, "PLAIN", std::string("\0test\0secret", 12));
    CHECK(refused.state == State::Failure);
    CHECK(refused.reason == "no mechanism available");
    auto tls = new_server(*factory, true);
    CHECK(tls->mechanisms() == "PLAIN LOGIN CRAM-MD5 DIGEST-MD5");
}

TEST_CASE("SASL mechanism filter applies to the offered list and to AUTH", "[sasl]") {
    SaslDir dir;
    auto factory =
        sasl::SaslServerFactory::create(dir.config("smtpd_sasl_mechanism_filter = login\n"), sasl::test::test_base());
    auto server = new_server(*factory);
    CHECK(server->mechanisms() == "LOGIN");
    auto refused = start_now(*server, "PLAIN", std::string("\0test\0secret", 12));
    CHECK(refused.state == State::Failure);
    CHECK(refused.reason == "no mechanism available");
}

TEST_CASE("SASL failure reply is 454 for a temporary failure", "[sasl]") {
    sasl::SaslStep step;
    step.reason = "generic failure";
    step.temporary = true;
    CHECK(sasl::failure_reply(step) == "454 4.7.0 Temporary authentication failure: generic failure");
    CHECK(sasl::failure_log_text("h[1.2.3.4]", "LOGIN", step) ==
          "h[1.2.3.4]: SASL LOGIN authentication failed: generic failure, sasl_username=(unavailable)");
}

TEST_CASE("SASL noanonymous (the default) hides ANONYMOUS; an empty option list shows it",
          "[sasl]") {
    SaslDir dir("PLAIN ANONYMOUS");
    {
        auto factory = sasl::SaslServerFactory::create(dir.config(), sasl::test::test_base());
        CHECK(new_server(*factory)->mechanisms() == "PLAIN");
    }
    auto factory = sasl::SaslServerFactory::create(dir.config("smtpd_sasl_security_options =\n"), sasl::test::test_base());
    auto server = new_server(*factory);
    CHECK(server->mechanisms() == "PLAIN ANONYMOUS");
    auto anonymous = start_now(*server, "ANONYMOUS", std::string("trace@example.org"));
    CHECK(anonymous.state == State::Success);
    CHECK(anonymous.username == "anonymous");
}
