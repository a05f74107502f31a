// Helpers shared by the SASL unit tests: a Cyrus configuration directory with
// smtpd.conf and a sasldb made by saslpasswd2, and a main.cf that points at it.
#pragma once

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "util/config/config.h"
#include "util/sasl/sasl_server.h"

namespace postern::sasl::test {

inline constexpr const char* kHost = "mail.example.com";  // myhostname: Cyrus's realm

// Runs saslpasswd2 with the password on stdin (fork/exec: no shell).
inline bool run_saslpasswd(const std::string& db, const std::string& user,
                           const std::string& password) {
    int in[2];
    if (pipe(in) != 0) return false;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        execl("/usr/sbin/saslpasswd2", "saslpasswd2", "-p", "-c", "-f", db.c_str(), "-u", kHost,
              user.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(in[0]);
    std::string line = password + "\n";
    ssize_t written = write(in[1], line.data(), line.size());
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return written == ssize_t(line.size()) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A Cyrus configuration directory with smtpd.conf and a sasldb holding "test"/"secret".
struct SaslDir {
    std::string dir;
    explicit SaslDir(const std::string& mech_list = "PLAIN LOGIN CRAM-MD5 DIGEST-MD5") {
        char tmpl[] = "/tmp/sasl-test.XXXXXX";
        dir = mkdtemp(tmpl);
        std::ofstream(dir + "/smtpd.conf") << "pwcheck_method: auxprop\n"
                                              "auxprop_plugin: sasldb\n"
                                              "sasldb_path: " << dir << "/sasldb2\n"
                                           << "mech_list: " << mech_list << "\n";
        REQUIRE(run_saslpasswd(dir + "/sasldb2", "test", "secret"));
    }
    ~SaslDir() { std::filesystem::remove_all(dir); }

    config::Config config(const std::string& extra = "") const {
        std::string text = "myhostname = " + std::string(kHost) +
                           "\ncyrus_sasl_config_path = " + dir + "\n" + extra;
        auto config = config::Config::from_text(text, dir + "/main.cf");
        REQUIRE(config.ok());
        return *config;
    }
};

// The event loop the SASL tests' answers arrive on (one for the test program).
inline event_base* test_base() {
    static event_base* base = event_base_new();
    return base;
}

// start/step, waiting on the loop for the answer.
inline SaslStep start_now(SaslServer& server, std::string_view mechanism,
                          const std::optional<std::string>& initial) {
    std::optional<SaslStep> answer;
    server.start(mechanism, initial, [&](SaslStep step) { answer = std::move(step); });
    while (!answer) event_base_loop(test_base(), EVLOOP_ONCE);
    return *answer;
}
inline SaslStep step_now(SaslServer& server, std::string_view response) {
    std::optional<SaslStep> answer;
    server.step(response, [&](SaslStep step) { answer = std::move(step); });
    while (!answer) event_base_loop(test_base(), EVLOOP_ONCE);
    return *answer;
}

inline std::unique_ptr<SaslServer> new_server(SaslServerFactory& factory, bool tls = false) {
    SaslConnectionInfo info{"127.0.0.1", "25", "127.0.0.1", "40000", tls};
    auto server = factory.new_server(info);
    REQUIRE(server.ok());
    return std::move(*server);
}

}  // namespace postern::sasl::test
