// smtpd_sasl_type = dovecot: the protocol pieces (handshake, MECH flags, replies) and the
// client against a scripted auth server on a UNIX socket: request ids keep overlapping
// exchanges apart, a lost connection is a temporary failure and the next one reconnects.
#include "util/sasl/dovecot_sasl_server.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "sasl_test_util.h"
#include "util/base/base64.h"
#include "util/base/unique_fd.h"
#include "util/sasl/sasl_options.h"

using namespace postern;
using namespace postern::sasl;
using State = SaslStep::State;

namespace {

// What Dovecot 2.3 says first (auth_mechanisms = plain login cram-md5).
constexpr const char* kHandshake =
    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
    "MECH\tCRAM-MD5\tdictionary\tactive\nSPID\t13874\nCUID\t1\n"
    "COOKIE\tc3c1e40235244f3cd852a99f455d9801\nDONE\n";

dovecot::Handshake::Progress feed_all(dovecot::Handshake& h, std::string_view text) {
    auto progress = dovecot::Handshake::Progress::More;
    while (!text.empty() && progress == dovecot::Handshake::Progress::More) {
        size_t nl = text.find('\n');
        progress = h.feed(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return progress;
}

// A scripted auth server: accepts one connection at a time on a socket in a temporary
// directory, sends the handshake, and answers each line with `answer(line)` ("" = none
// yet; held answers go out with the next line's).
class FakeDovecot {
public:
    using Answer = std::function<std::string(const std::string&)>;
    explicit FakeDovecot(Answer answer) : answer_(std::move(answer)) {
        char tmpl[] = "/tmp/dovecot-test.XXXXXX";
        dir_ = mkdtemp(tmpl);
        path_ = dir_ + "/auth";
        listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strcpy(sun.sun_path, path_.c_str());
        REQUIRE(bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
        REQUIRE(listen(listen_fd_.get(), 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDovecot() {
        shutdown(listen_fd_.get(), SHUT_RDWR);
        // libevent closes a freed bufferevent's socket from its loop: do not wait for it.
        if (int fd = conn_fd_.load(); fd >= 0) shutdown(fd, SHUT_RDWR);
        thread_.join();
        std::filesystem::remove_all(dir_);
    }
    const std::string& path() const { return path_; }
    int connections() const { return connections_; }
    // The connection in progress ends after the next line it reads.
    void drop_after_next_line() { drop_ = true; }

private:
    void serve() {
        for (;;) {
            UniqueFd conn(accept(listen_fd_.get(), nullptr, nullptr));
            if (!conn) return;
            conn_fd_ = conn.get();
            ++connections_;
            if (write(conn.get(), kHandshake, std::strlen(kHandshake)) < 0) continue;
            std::string buffer;
            char chunk[4096];
            for (;;) {
                ssize_t n = read(conn.get(), chunk, sizeof chunk);
                if (n <= 0) break;
                buffer.append(chunk, size_t(n));
                size_t nl;
                bool dropped = false;
                while ((nl = buffer.find('\n')) != std::string::npos) {
                    std::string line = buffer.substr(0, nl);
                    buffer.erase(0, nl + 1);
                    if (drop_.exchange(false) && line.starts_with("AUTH")) {
                        dropped = true;
                        break;
                    }
                    std::string out = answer_(line);
                    if (!out.empty() && write(conn.get(), out.data(), out.size()) < 0) break;
                }
                if (dropped) break;
            }
            conn_fd_ = -1;
        }
    }

    Answer answer_;
    std::string dir_, path_;
    UniqueFd listen_fd_;
    std::thread thread_;
    std::atomic<int> connections_{0};
    std::atomic<bool> drop_{false};
    std::atomic<int> conn_fd_{-1};
};

config::Config dovecot_config(const std::string& path, const std::string& extra = "") {
    auto config = config::Config::from_text("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = " + path + "\n" + extra,
                                            "/tmp/main.cf");
    REQUIRE(config.ok());
    return *config;
}

std::string field(const std::string& line, int n) {
    size_t start = 0;
    for (int i = 0; i < n; ++i) start = line.find('\t', start) + 1;
    return line.substr(start, line.find('\t', start) - start);
}

}  // namespace

TEST_CASE("Dovecot handshake: MECH flags, version and the wrong socket", "[sasl]") {
    dovecot::Handshake h;
    REQUIRE(feed_all(h, kHandshake) == dovecot::Handshake::Progress::Done);
    REQUIRE(h.mechanisms().size() == 3);
    CHECK(h.mechanisms()[0].flags == kNoPlaintext);
    CHECK(h.mechanisms()[2].flags == (kNoDictionary | kNoActive));
    CHECK(dovecot::allowed_mechanisms(h.mechanisms(), kNoAnonymous) == "PLAIN LOGIN CRAM-MD5");
    CHECK(dovecot::allowed_mechanisms(h.mechanisms(), kNoAnonymous | kNoPlaintext) == "CRAM-MD5");
    CHECK(dovecot::allowed_mechanisms(h.mechanisms(), kNoActive) == "PLAIN LOGIN");
    CHECK(dovecot::allowed_mechanisms(h.mechanisms(), kMutualAuth).empty());

    dovecot::Handshake master;  // auth-master: VERSION and SPID only
    CHECK(feed_all(master, "VERSION\t1\t2\nSPID\t1\n") == dovecot::Handshake::Progress::Failed);
    CHECK(master.error() == "SASL: Connected to wrong auth socket (auth-master instead of auth-client)");
    dovecot::Handshake v2;
    CHECK(v2.feed("VERSION\t2\t0") == dovecot::Handshake::Progress::Failed);
    CHECK(v2.error() == "SASL: Protocol version mismatch (2 vs. 1)");
    dovecot::Handshake garbage;
    CHECK(garbage.feed("VERSION\tx") == dovecot::Handshake::Progress::Failed);
    CHECK(garbage.error() == "SASL: Protocol version error");
    dovecot::Handshake hidden;
    feed_all(hidden, "VERSION\t1\t2\nMECH\tSECRET\tprivate\nMECH\tPLAIN\tplaintext\nDONE\n");
    CHECK(dovecot::allowed_mechanisms(hidden.mechanisms(), 0) == "PLAIN");
}

TEST_CASE("Dovecot replies become SASL steps", "[sasl]") {
    auto ok = dovecot::step_of(dovecot::parse_reply("OK\t7\tuser=test"));
    CHECK(ok.state == State::Success);
    CHECK(ok.username == "test");
    auto cont = dovecot::step_of(dovecot::parse_reply("CONT\t7\tVXNlcm5hbWU6"));
    CHECK(cont.state == State::Continue);
    CHECK(cont.challenge == "Username:");
    CHECK(dovecot::step_of(dovecot::parse_reply("CONT\t7\t")).challenge.empty());
    auto fail = dovecot::step_of(dovecot::parse_reply("FAIL\t7\tuser=te\001tst\treason=Bad\x01stuff"));
    CHECK(fail.state == State::Failure);
    CHECK(fail.username == "te?st");  // unescaped tab, then printable as Postfix logs it
    CHECK_FALSE(fail.temporary);
    auto temp = dovecot::step_of(dovecot::parse_reply("FAIL\t7\ttemp\treason=passdb down"));
    CHECK(temp.temporary);
    CHECK(failure_reply(temp) == "454 4.7.0 Temporary authentication failure: passdb down");
    auto nouser = dovecot::step_of(dovecot::parse_reply("OK\t7"));
    CHECK(nouser.state == State::Failure);
    CHECK(nouser.reason == "Authentication backend error");
    CHECK(dovecot::parse_reply("OK\tx").kind == dovecot::Reply::Kind::Other);
    CHECK(dovecot::parse_reply("MECH\tPLAIN").kind == dovecot::Reply::Kind::Other);
    CHECK(dovecot::parse_reply("FAIL\t12\tuser=a").id == 12);
}

TEST_CASE("Dovecot client: overlapping exchanges keep their request ids", "[sasl]") {
    std::mutex m;
    std::string held;  // the first AUTH is answered after the second
    std::vector<std::string> auth_lines;
    FakeDovecot server([&](const std::string& line) -> std::string {
        std::lock_guard lock(m);
        if (!line.starts_with("AUTH")) return "";
        auth_lines.push_back(line);
        std::string id = field(line, 1);
        if (held.empty()) {
            held = "FAIL\t" + id + "\tuser=first\n";
            return "";
        }
        return "OK\t" + id + "\tuser=second\n" + held;
    });
    auto factory = SaslServerFactory::create(dovecot_config(server.path()), test::test_base());
    auto first = test::new_server(*factory);
    auto second = test::new_server(*factory, true);
    CHECK(first->mechanisms() == "PLAIN LOGIN CRAM-MD5");
    std::optional<SaslStep> a, b;
    first->start("PLAIN", std::string("\0first\0x", 8), [&](SaslStep s) { a = s; });
    second->start("PLAIN", std::string("\0second\0y", 9), [&](SaslStep s) { b = s; });
    while (!a || !b) event_base_loop(test::test_base(), EVLOOP_ONCE);
    CHECK(a->state == State::Failure);
    CHECK(a->username == "first");
    CHECK(b->state == State::Success);
    CHECK(b->username == "second");
    CHECK(server.connections() == 1);  // one connection for the process
    REQUIRE(auth_lines.size() == 2);
    CHECK(field(auth_lines[0], 2) == "PLAIN");
    CHECK(auth_lines[0].find("\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tlport=25\trport=40000") !=
          std::string::npos);
    CHECK(auth_lines[0].find("\tsecured") == std::string::npos);
    CHECK(auth_lines[1].find("\tsecured\tresp=" + base64::encode(std::string("\0second\0y", 9))) !=
          std::string::npos);
}

TEST_CASE("Dovecot client: CONT steps, a lost connection, then a new one", "[sasl]") {
    FakeDovecot server([](const std::string& line) -> std::string {
        std::string id = field(line, 1);
        if (line.starts_with("AUTH")) return "CONT\t" + id + "\t" + base64::encode("Username:") + "\n";
        if (line.starts_with("CONT")) return "OK\t" + id + "\tuser=" + *base64::decode(field(line, 2)) + "\n";
        return "";
    });
    auto factory = SaslServerFactory::create(dovecot_config(server.path()), test::test_base());
    auto login = test::new_server(*factory);
    auto prompt = test::start_now(*login, "LOGIN", std::nullopt);
    REQUIRE(prompt.state == State::Continue);
    CHECK(prompt.challenge == "Username:");
    auto done = test::step_now(*login, "someone");
    CHECK(done.state == State::Success);
    CHECK(done.username == "someone");

    // The server goes away in the middle of an exchange: 454, and the next AUTH connects
    // again.
    auto lost = test::new_server(*factory);
    server.drop_after_next_line();
    auto failed = test::start_now(*lost, "LOGIN", std::nullopt);
    CHECK(failed.state == State::Failure);
    CHECK(failed.temporary);
    CHECK(failed.reason == "Connection lost to authentication server");
    auto again = test::new_server(*factory);
    CHECK(test::start_now(*again, "LOGIN", std::nullopt).state == State::Continue);
    CHECK(server.connections() == 2);
}

TEST_CASE("Dovecot client: unreachable socket, unknown mechanism, a server dropped while waiting",
          "[sasl]") {
    auto factory = SaslServerFactory::create(dovecot_config("/nonexistent/auth"), test::test_base());
    auto server = test::new_server(*factory);
    CHECK(server->mechanisms().empty());
    auto refused = test::start_now(*server, "PLAIN", std::string("\0a\0b", 4));
    CHECK(refused.temporary);
    CHECK(failure_reply(refused) == "454 4.7.0 Temporary authentication failure: Can't connect to authentication server");

    FakeDovecot dovecot([](const std::string&) -> std::string { return ""; });  // never answers
    auto factory2 = SaslServerFactory::create(dovecot_config(dovecot.path()), test::test_base());
    auto unknown = test::new_server(*factory2);
    auto bad = test::start_now(*unknown, "GSSAPI", std::nullopt);
    CHECK(bad.state == State::Failure);
    CHECK_FALSE(bad.temporary);
    CHECK(bad.reason == "Invalid authentication mechanism");
    // Destroying a server cancels: its callback never runs.
    bool called = false;
    auto gone = test::new_server(*factory2);
    gone->start("PLAIN", std::string("\0a\0b", 4), [&](SaslStep) { called = true; });
    gone.reset();
    for (int i = 0; i < 100; ++i) event_base_loop(test::test_base(), EVLOOP_NONBLOCK);
    CHECK_FALSE(called);
}
