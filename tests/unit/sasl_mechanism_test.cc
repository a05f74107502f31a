// The challenge-response mechanisms, driven by Cyrus's own client library against the
// server: what a real MUA does, without base64 or SMTP in between.
#include <catch2/catch.hpp>
#include <sasl/sasl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/sasl/sasl_options.h"
#include "util/sasl/sasl_server.h"

using namespace postern;
using State = sasl::SaslStep::State;

namespace {

constexpr const char* kHost = "mail.example.com";

bool make_user(const std::string& db, const char* user, const std::string& password) {
    int in[2];
    if (pipe(in) != 0) return false;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        execl("/usr/sbin/saslpasswd2", "saslpasswd2", "-p", "-c", "-f", db.c_str(), "-u", kHost,
              user, static_cast<char*>(nullptr));
        _exit(127);
    }
    close(in[0]);
    std::string line = password + "\n";
    bool ok = write(in[1], line.data(), line.size()) == ssize_t(line.size());
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

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
    REQUIRE(sasl_client_new("smtp", kHost, nullptr, nullptr, callbacks, 0, &client) == SASL_OK);
    const char* out = nullptr;
    unsigned out_len = 0;
    const char* chosen = nullptr;
    int status = sasl_client_start(client, mechanism, nullptr, &out, &out_len, &chosen);
    REQUIRE((status == SASL_OK || status == SASL_CONTINUE));
    std::optional<std::string> initial;
    if (out) initial = std::string(out, out_len);
    sasl::SaslStep step = server.start(mechanism, initial);
    for (int round = 0; step.state == State::Continue && round < 10; ++round) {
        status = sasl_client_step(client, step.challenge.data(), unsigned(step.challenge.size()),
                                  nullptr, &out, &out_len);
        REQUIRE((status == SASL_OK || status == SASL_CONTINUE));
        step = server.step(std::string(out ? out : "", out_len));
    }
    sasl_dispose(&client);
    return step;
}

struct MechDir {
    std::string dir;
    MechDir() {
        char tmpl[] = "/tmp/sasl-mech-test.XXXXXX";
        dir = mkdtemp(tmpl);
        std::ofstream(dir + "/smtpd.conf")
            << "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: " << dir
            << "/sasldb2\nmech_list: PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256\n";
        REQUIRE(make_user(dir + "/sasldb2", "test", "secret"));
    }
    ~MechDir() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("SASL challenge-response mechanisms with Cyrus's client", "[sasl]") {
    MechDir dir;
    auto config = config::Config::from_text(
        "myhostname = mail.example.com\ncyrus_sasl_config_path = " + dir.dir + "\n", "main.cf");
    REQUIRE(config.ok());
    auto factory = sasl::SaslServerFactory::create(*config);
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
