// The challenge-response mechanisms, driven by Cyrus's own client library against the
// server: what a real MUA does, without base64 or SMTP in between.
#include <catch2/catch.hpp>
#include <sasl/sasl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "util/sasl/sasl_options.h"
#include "util/sasl/sasl_server.h"
#include "sasl_test_util.h"

using namespace postern;
using State = sasl::SaslStep::State;

namespace {

struct Credentials {
    std::string user, password;
    sasl_secret_t* secret = nullptr;
    ~Credentials() { free(secret); }
};

int get_simple(void* context, int id, const char** result, unsigned* len) {
    auto* c = static_cast<Credentials*>(context);
    if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME) return SASL_BADPARAM;
    *result = id == SASL_CB_USER ? "" : c->user.c_str();
    if (len) *len = unsigned(strlen(*result));
    return SASL_OK;
}

int get_secret(sasl_conn_t*, void* context, int, sasl_secret_t** out) {
    auto* c = static_cast<Credentials*>(context);
    free(c->secret);
    c->secret = static_cast<sasl_secret_t*>(malloc(sizeof(sasl_secret_t) + c->password.size()));
    c->secret->len = c->password.size();
    memcpy(c->secret->data, c->password.data(), c->password.size());
    *out = c->secret;
    return SASL_OK;
}

template <class F>
int (*callback(F f))() {
    return reinterpret_cast<int (*)()>(reinterpret_cast<void (*)()>(f));
}

// Runs `mechanism` with Cyrus's client until the server says Success or Failure.
sasl::SaslStep authenticate(sasl::SaslServer& server, const char* mechanism, Credentials& creds) {
    static bool client_ready = sasl_client_init(nullptr) == SASL_OK;
    REQUIRE(client_ready);
    sasl_callback_t callbacks[] = {
        {SASL_CB_USER, callback(&get_simple), &creds},
        {SASL_CB_AUTHNAME, callback(&get_simple), &creds},
        {SASL_CB_PASS, callback(&get_secret), &creds},
        {SASL_CB_LIST_END, nullptr, nullptr},
    };
    sasl_conn_t* client = nullptr;
    REQUIRE(sasl_client_new("smtp", sasl::test::kHost, nullptr, nullptr, callbacks, 0, &client) == SASL_OK);
    const char* out = nullptr;
    unsigned out_len = 0;
    const char* chosen = nullptr;
    int status = sasl_client_start(client, mechanism, nullptr, &out, &out_len, &chosen);
    REQUIRE((status == SASL_OK || status == SASL_CONTINUE));
    std::optional<std::string> initial;
    if (out) initial = std::string(out, out_len);
    sasl::SaslStep step = sasl::test::start_now(server, mechanism, initial);
    for (int round = 0; step.state == State::Continue && round < 10; ++round) {
        status = sasl_client_step(client, step.challenge.data(), unsigned(step.challenge.size()),
                                  nullptr, &out, &out_len);
        REQUIRE((status == SASL_OK || status == SASL_CONTINUE));
        step = sasl::test::step_now(server, std::string(out ? out : "", out_len));
    }
    sasl_dispose(&client);
    return step;
}

}  // namespace

TEST_CASE("SASL challenge-response mechanisms with Cyrus's client", "[sasl]") {
    sasl::test::SaslDir dir("PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256");
    auto factory = sasl::SaslServerFactory::create(dir.config(), sasl::test::test_base());
    sasl::SaslConnectionInfo info{"127.0.0.1", "25", "127.0.0.1", "40000", false};
    for (const char* mechanism : {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1",
                                  "SCRAM-SHA-256"}) {
        INFO(mechanism);
        auto server = factory->new_server(info);
        REQUIRE(server.ok());
        CHECK(sasl::mechanism_listed((*server)->mechanisms(), mechanism));
        Credentials good{"test", "secret"};
        auto ok = authenticate(**server, mechanism, good);
        CHECK(ok.state == State::Success);
        CHECK(ok.username == "test");

        auto server2 = factory->new_server(info);
        REQUIRE(server2.ok());
        Credentials bad{"test", "wrong"};
        auto refused = authenticate(**server2, mechanism, bad);
        CHECK(refused.state == State::Failure);
        CHECK_FALSE(refused.temporary);
    }
}
