// check_policy_service: the request encoding, the reply parser (fed whole, byte by
// byte and in random splits), and the engine against a policy server on a UNIX socket
// in a thread: actions applied, requests in order over one connection, the default
// action when the server is gone. The policy sources are compiled in here (smtpd is a
// program); smtpd_check_test.cc and smtpd_reader_test.cc provide the rest of smtpd.
#include <catch2/catch.hpp>

#include <event2/event.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "smtpd/smtpd_check_policy.cc"   // NOLINT: program code, not in libpostern
#include "smtpd/smtpd_policy_client.cc"  // NOLINT
#include "smtpd_check_test_util.h"

using namespace postern;
using namespace postern::smtpd;
using postern::smtpd::test::CheckFixture;

namespace {

PolicyReplyParser::State feed_split(PolicyReplyParser& p, const std::string& text, std::mt19937& rng) {
    size_t i = 0;
    auto state = PolicyReplyParser::State::More;
    while (i < text.size() && state == PolicyReplyParser::State::More) {
        size_t n = std::uniform_int_distribution<size_t>(1, 7)(rng);
        state = p.feed(std::string_view(text).substr(i, n));
        i += n;
    }
    return state;
}

// A policy server: answers every request on a connection with reply(request), counts
// connections; closes a connection without answering when reply() returns "".
class PolicyThread {
public:
    explicit PolicyThread(std::function<std::string(const std::string&)> reply) : reply_(std::move(reply)) {
        path = "/tmp/postern-policy-test-" + std::to_string(getpid()) + ".sock";
        unlink(path.c_str());
        fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path.c_str());
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
        REQUIRE(listen(fd_, 5) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~PolicyThread() {
        shutdown(fd_, SHUT_RDWR);
        close(fd_);
        thread_.join();
        unlink(path.c_str());
    }
    std::string path;
    std::atomic<int> connections{0};
    std::vector<std::string> requests;  // read after the loop is done

private:
    void serve() {
        for (;;) {
            int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            ++connections;
            std::string buf;
            char tmp[4096];
            ssize_t n;
            bool open = true;
            while (open && (n = read(c, tmp, sizeof tmp)) > 0) {
                buf.append(tmp, static_cast<size_t>(n));
                size_t end;
                while ((end = buf.find("\n\n")) != std::string::npos) {
                    std::string req = buf.substr(0, end + 1);
                    buf.erase(0, end + 2);
                    requests.push_back(req);
                    std::string answer = reply_(req);
                    if (answer.empty()) {
                        open = false;
                        break;
                    }
                    std::string wire = "action=" + answer + "\n\n";
                    if (write(c, wire.data(), wire.size()) < 0) open = false;
                }
            }
            close(c);
        }
    }
    std::function<std::string(const std::string&)> reply_;
    int fd_ = -1;
    std::thread thread_;
};

struct Loop {
    Loop() : base(event_base_new()) {}
    ~Loop() { event_base_free(base); }
    event_base* base;
};

}  // namespace

TEST_CASE("policy request: name=value lines and an empty line, no newline inside a value", "[smtpd_policy]") {
    CHECK(encode_policy_request({{"request", "smtpd_access_policy"}, {"sender", "a%b@x"}, {"helo_name", "a\nb"}}) ==
          "request=smtpd_access_policy\nsender=a%b@x\nhelo_name=a b\n\n");
}

TEST_CASE("policy reply parser: any split, CRLF, junk and size limit", "[smtpd_policy]") {
    const std::string reply = "action=REJECT 50% spam\r\nextra=x=y\n\n";
    std::mt19937 rng(7);
    for (int round = 0; round < 50; ++round) {
        PolicyReplyParser p;
        REQUIRE(feed_split(p, reply, rng) == PolicyReplyParser::State::Done);
        REQUIRE(p.attrs().size() == 2);
        CHECK(p.attrs()[0] == std::pair<std::string, std::string>{"action", "REJECT 50% spam"});
        CHECK(p.attrs()[1] == std::pair<std::string, std::string>{"extra", "x=y"});
    }
    PolicyReplyParser bytewise;
    for (size_t i = 0; i + 1 < reply.size(); ++i) CHECK(bytewise.feed(reply.substr(i, 1)) == PolicyReplyParser::State::More);
    CHECK(bytewise.feed("\n") == PolicyReplyParser::State::Done);
    PolicyReplyParser junk;
    CHECK(junk.feed("no equals sign\n") == PolicyReplyParser::State::Error);
    PolicyReplyParser big;
    CHECK(big.feed("action=" + std::string(70000, 'x')) == PolicyReplyParser::State::Error);
}

TEST_CASE("check_policy_service applies the server's actions over one kept connection", "[smtpd_policy]") {
    PolicyThread server([](const std::string& req) -> std::string {
        if (req.find("recipient=bad@example.test\n") != std::string::npos) return "REJECT go away";
        if (req.find("recipient=hold@example.test\n") != std::string::npos) return "HOLD policy";
        return "DUNNO";
    });
    Loop loop;
    CheckFixture f("smtpd_recipient_restrictions = check_policy_service unix:" + server.path +
                       ", permit_mynetworks, reject_unauth_destination\nmynetworks = 127.0.0.0/8\n"
                       "smtpd_policy_service_policy_context = unit\n",
                   nullptr, loop.base);
    f.facts.transaction.recipient = "bad@example.test";
    CHECK(f.check(CheckPoint::Rcpt) == "554 5.7.1 <bad@example.test>: Recipient address rejected: go away");
    f.facts.transaction.recipient = "hold@example.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    CHECK(f.actions().hold.has_value());
    f.facts.transaction.recipient = "fine@example.test";
    CHECK(f.check(CheckPoint::Rcpt).empty());
    CHECK(server.connections == 1);
    REQUIRE(server.requests.size() == 3);
    CHECK(server.requests[0].rfind("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n", 0) == 0);
    CHECK(server.requests[0].find("\npolicy_context=unit\n") != std::string::npos);
    CHECK(server.requests[2].find("\nrecipient=fine@example.test\n") != std::string::npos);
}

TEST_CASE("check_policy_service: a server that closes answers the default action after try_limit", "[smtpd_policy]") {
    PolicyThread server([](const std::string&) { return std::string(); });
    Loop loop;
    CheckFixture f("smtpd_recipient_restrictions = $t_policy, permit_mynetworks, reject_unauth_destination\n"
                   "t_policy = check_policy_service { unix:" + server.path + ", try_limit=2, retry_delay=1s,"
                   " {default_action=450 4.7.1 policy unavailable} }\nmynetworks = 127.0.0.0/8\n",
                   nullptr, loop.base);
    f.facts.transaction.recipient = "a@example.test";
    CHECK(f.check(CheckPoint::Rcpt) == "450 4.7.1 <a@example.test>: Recipient address rejected: policy unavailable");
    CHECK(server.connections == 2);
    // Postfix stays quiet about the first broken connection, warns about the second.
    CHECK(f.log_has("warning: problem talking to server " + server.path + ": Application error"));
}

TEST_CASE("check_policy_service: request_limit closes the connection after that many requests", "[smtpd_policy]") {
    PolicyThread server([](const std::string&) { return std::string("DUNNO"); });
    Loop loop;
    CheckFixture f("smtpd_recipient_restrictions = $t_policy, permit_mynetworks, reject_unauth_destination\n"
                   "t_policy = check_policy_service { unix:" + server.path + ", request_limit=2 }\n"
                   "mynetworks = 127.0.0.0/8\n",
                   nullptr, loop.base);
    for (int i = 0; i < 5; ++i) {
        f.facts.transaction.recipient = "r" + std::to_string(i) + "@example.test";
        CHECK(f.check(CheckPoint::Rcpt).empty());
    }
    CHECK(server.requests.size() == 5);
    CHECK(server.connections == 3);  // 2 + 2 + 1
}
