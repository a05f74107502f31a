// smtpd's anvil limits against a fake anvil (a thread serving the real AnvilTable on a
// UNIX socket), and the smtpd_client_event_limit_exceptions matcher.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "smtpd/smtpd_anvil.cc"  // NOLINT: program code, not in libpostern
#include "util/anvil/anvil_table.h"
#include "util/ipc/attr.h"

using namespace postern;
using namespace postern::smtpd;

namespace {

// Serves anvil requests, a thread per client connection, until stopped.
class FakeAnvil {
public:
    FakeAnvil() : table_(60, [] { return 1000L; }) {
        char tmpl[] = "/tmp/smtpd_anvil_testXXXXXX";
        dir_ = mkdtemp(tmpl);
        path_ = dir_ + "/anvil";
        listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_.c_str());
        REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        REQUIRE(listen(listen_fd_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeAnvil() {
        shutdown(listen_fd_, SHUT_RDWR);
        close(listen_fd_);
        thread_.join();
        for (auto& t : clients_) t.join();
        unlink(path_.c_str());
        rmdir(dir_.c_str());
    }
    const std::string& path() const { return path_; }
    std::atomic<int> requests{0};

private:
    void serve() {
        uint64_t local = 0;
        for (;;) {
            int fd = accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) return;
            clients_.emplace_back([this, fd, id = ++local] { serve_client(fd, id); });
        }
    }
    void serve_client(int fd, uint64_t local) {
        ipc::AttrDecoder dec;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            (void)dec.feed(std::string_view(buf, static_cast<size_t>(n)));
            while (auto rec = dec.next()) answer(fd, *rec, local);
        }
        std::lock_guard lock(mutex_);
        table_.drop_local(local);  // as anvil does when a client goes away
        close(fd);
    }
    void answer(int fd, const ipc::AttrRecord& rec, uint64_t local) {
        std::lock_guard lock(mutex_);
        ++requests;
        auto req = ipc::anvil::AnvilRequest::from_record(rec);
        ipc::anvil::AnvilReply reply;
        using R = ipc::anvil::Request;
        switch (req->request) {
            case R::Connect: {
                auto c = table_.connect(req->ident, local);
                reply.count = c.count;
                reply.rate = c.rate;
                break;
            }
            case R::Disconnect: table_.disconnect(req->ident, local); break;
            case R::Message: reply.rate = table_.message(req->ident, local); break;
            case R::Recipient: reply.rate = table_.recipient(req->ident, local); break;
            case R::Auth: reply.rate = table_.auth(req->ident, local); break;
            case R::NewTls: reply.rate = table_.newtls(req->ident, local); break;
            case R::NewTlsReport: reply.rate = table_.newtls_report(req->ident); break;
            default: break;
        }
        std::string wire = ipc::encode_record(reply.to_record(req->request));
        REQUIRE(write(fd, wire.data(), wire.size()) == static_cast<ssize_t>(wire.size()));
    }

    postern::anvil::AnvilTable table_;
    std::string dir_, path_;
    int listen_fd_ = -1;
    std::thread thread_;
    std::vector<std::thread> clients_;
    std::mutex mutex_;
};

SessionFacts client(std::string addr, std::string name = "unknown") {
    SessionFacts f;
    f.service_name = "smtp";
    f.client.address = std::move(addr);
    f.client.name = std::move(name);
    return f;
}

ExceptionMatcher matcher(std::vector<std::string> patterns, bool parent = false) {
    auto m = make_exception_matcher(patterns, parent);
    REQUIRE(m);
    return *m;
}

}  // namespace

TEST_CASE("connection count limit: 421 with Postfix's text once the count is over", "[smtpd_anvil]") {
    FakeAnvil anvil;
    LimitSettings s;
    s.connection_count = 2;
    s.myhostname = "mx.example.test";
    s.anvil_socket = anvil.path();
    AnvilLimits limits(s, matcher({}));
    SessionFacts f = client("192.0.2.7", "c.example.test");
    auto a = limits.new_session(f), b = limits.new_session(f), c = limits.new_session(f);
    CHECK_FALSE(a->check_connect());
    CHECK_FALSE(b->check_connect());
    auto r = c->check_connect();
    REQUIRE(r);
    CHECK(r->text == "421 4.7.0 mx.example.test Error: too many connections from 192.0.2.7");
    CHECK(r->close);
    c.reset();
    a.reset();  // the destructors reported both disconnects: room for one more
    auto d = limits.new_session(f);
    CHECK_FALSE(d->check_connect());
}

TEST_CASE("message, recipient and auth rates answer 450 4.7.1", "[smtpd_anvil]") {
    FakeAnvil anvil;
    LimitSettings s;
    s.message_rate = 1;
    s.recipient_rate = 2;
    s.auth_rate = 1;
    s.anvil_socket = anvil.path();
    AnvilLimits limits(s, matcher({}));
    SessionFacts f = client("198.51.100.1");
    auto sess = limits.new_session(f);
    CHECK_FALSE(sess->check_connect());
    CHECK_FALSE(sess->check_mail());
    auto m = sess->check_mail();
    REQUIRE(m);
    CHECK(m->text == "450 4.7.1 Error: too much mail from 198.51.100.1");
    CHECK_FALSE(m->close);
    CHECK_FALSE(sess->check_rcpt());
    CHECK_FALSE(sess->check_rcpt());
    REQUIRE(sess->check_rcpt());
    CHECK(sess->check_rcpt()->text == "450 4.7.1 Error: too many recipients from 198.51.100.1");
    CHECK_FALSE(sess->check_auth());
    CHECK(sess->check_auth()->text == "450 4.7.1 Error: too many AUTH commands from 198.51.100.1");
}

TEST_CASE("new TLS sessions: 454 at STARTTLS, 421 after a new handshake, resumed ones free",
          "[smtpd_anvil]") {
    FakeAnvil anvil;
    LimitSettings s;
    s.new_tls_rate = 1;
    s.myhostname = "mx.example.test";
    s.anvil_socket = anvil.path();
    AnvilLimits limits(s, matcher({}));
    SessionFacts f = client("192.0.2.9", "tls.example.test");
    auto sess = limits.new_session(f);
    CHECK_FALSE(sess->check_starttls());
    CHECK_FALSE(sess->check_tls_established(false));
    CHECK_FALSE(sess->check_tls_established(true));
    auto r = sess->check_tls_established(false);
    REQUIRE(r);
    CHECK(r->text == "421 4.7.0 mx.example.test Error: too many new TLS sessions from tls.example.test[192.0.2.9]");
    CHECK(r->close);
    auto st = sess->check_starttls();
    REQUIRE(st);
    CHECK(st->text == "454 4.7.0 Error: too many new TLS sessions from tls.example.test[192.0.2.9]");
}

TEST_CASE("exempt clients never reach anvil; no limits, no anvil traffic", "[smtpd_anvil]") {
    FakeAnvil anvil;
    LimitSettings s;
    s.connection_count = 1;
    s.message_rate = 1;
    s.anvil_socket = anvil.path();
    AnvilLimits limits(s, matcher({"127.0.0.0/8", "[::1]/128"}));
    SessionFacts f = client("127.0.0.1", "localhost");
    auto a = limits.new_session(f), b = limits.new_session(f);
    CHECK_FALSE(a->check_connect());
    CHECK_FALSE(b->check_connect());
    for (int i = 0; i < 3; ++i) CHECK_FALSE(b->check_mail());
    CHECK(anvil.requests == 0);

    LimitSettings off;
    off.connection_count = 0;
    off.anvil_socket = anvil.path();
    AnvilLimits none(off, matcher({}));
    SessionFacts g = client("192.0.2.1");
    CHECK_FALSE(none.new_session(g)->check_connect());
    CHECK(anvil.requests == 0);
}

TEST_CASE("anvil unreachable: limits are not enforced", "[smtpd_anvil]") {
    LimitSettings s;
    s.connection_count = 1;
    s.anvil_socket = "/nonexistent/anvil";
    AnvilLimits limits(s, matcher({}));
    SessionFacts f = client("192.0.2.1");
    auto a = limits.new_session(f), b = limits.new_session(f);
    CHECK_FALSE(a->check_connect());
    CHECK_FALSE(b->check_connect());
}

TEST_CASE("event limit exceptions: networks, names, negation, tables, files", "[smtpd_anvil]") {
    auto m = matcher({"!192.0.2.66", "192.0.2.0/24", "[2001:db8::]/32", ".trusted.test", "exact.test"});
    CHECK(m(client("192.0.2.5").client));
    CHECK_FALSE(m(client("192.0.2.66").client));
    CHECK_FALSE(m(client("192.0.3.5").client));
    CHECK(m(client("2001:db8::25").client));
    CHECK_FALSE(m(client("2001:db9::25").client));
    CHECK(m(client("203.0.113.1", "mx.trusted.test").client));
    CHECK(m(client("203.0.113.1", "EXACT.test").client));
    CHECK_FALSE(m(client("203.0.113.1", "sub.exact.test").client));
    CHECK(matcher({"exact.test"}, true)(client("203.0.113.1", "sub.exact.test").client));
    CHECK_FALSE(m(client("::ffff:192.0.2.5").client));

    auto t = matcher({"inline:{ 203.0.113.9=ok, host.example=ok }"});
    CHECK(t(client("203.0.113.9").client));
    CHECK(t(client("203.0.113.10", "host.example").client));
    CHECK_FALSE(t(client("203.0.113.10").client));

    std::string file = "/tmp/smtpd_anvil_test_list." + std::to_string(getpid());
    std::ofstream(file) << "# trusted\n10.0.0.0/8, 172.16.0.0/12\n";
    auto f = matcher({file});
    CHECK(f(client("172.20.1.1").client));
    CHECK_FALSE(f(client("192.168.1.1").client));
    std::remove(file.c_str());

    CHECK_FALSE(make_exception_matcher(std::vector<std::string>{"nosuchtype:/x"}, false));
}
