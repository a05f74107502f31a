// The daemon skeleton run in a forked child with the descriptors master would hand over:
// trigger, single and multi modes, status reports, max_use, bounded input, ipc_call.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "util/daemon/ipc_client.h"
#include "util/daemon/master_proto.h"
#include "util/daemon/server.h"
#include "util/log/log.h"

using namespace postern;
using namespace postern::daemon;

namespace {

struct TmpDir {
    std::string path;
    TmpDir() {
        char tmpl[] = "/tmp/postern-daemon-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TmpDir() {
        std::string cmd = path;
        // Remove the few files the tests made.
        for (const char* f : {"/sock", "/fifo", "/out"}) unlink((path + f).c_str());
        rmdir(path.c_str());
    }
};

int unix_listener(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    unlink(path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    REQUIRE(listen(fd, 10) == 0);
    return fd;
}

int unix_connect(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    return fd;
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

// Forks a daemon: `listen_fd` becomes kListenFd, `status_fd` (or nothing) kStatusFd.
pid_t fork_daemon(ServerMode mode, const DaemonHooks& hooks, const std::string& dir, int listen_fd,
                  int status_fd, const std::string& extra_main_cf = "") {
    signal(SIGPIPE, SIG_IGN);  // a test writes to clients the daemon hung up on
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid > 0) return pid;
    log::Settings s;
    s.to_syslog = false;
    s.to_stderr = false;
    log::configure(s);
    dup2(listen_fd, kListenFd);
    if (status_fd >= 0)
        dup2(status_fd, kStatusFd);
    else
        close(kStatusFd);
    auto cfg = config::Config::from_text("queue_directory = " + dir + "\nmax_idle = 10s\n" + extra_main_cf,
                                         dir + "/main.cf");
    if (!cfg) _exit(3);
    DaemonArgs args;
    args.service_name = "test";
    args.transport = mode == ServerMode::Trigger ? "fifo" : "unix";
    _exit(run_daemon(mode, hooks, *cfg, args));
}

int wait_exit(pid_t pid) {
    int status = 0;
    for (int i = 0; i < 500; ++i) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

}  // namespace

TEST_CASE("trigger server hands each wake-up request on a fifo to its hook") {
    TmpDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    int fd = open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    std::string out = dir.path + "/out";
    DaemonHooks hooks;
    hooks.on_trigger = [&](ServerContext& ctx, std::string_view data) {
        std::ofstream(out, std::ios::app) << data;
        if (data.find('X') != std::string_view::npos) ctx.request_exit();
    };
    pid_t pid = fork_daemon(ServerMode::Trigger, hooks, dir.path, fd, -1);
    close(fd);
    int w = open(fifo.c_str(), O_WRONLY);
    REQUIRE(write(w, "W", 1) == 1);
    usleep(100000);
    REQUIRE(write(w, "X", 1) == 1);
    close(w);
    CHECK(wait_exit(pid) == 0);
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    CHECK(ss.str() == "WX");
}

TEST_CASE("single server serves one client at a time, reports busy and idle, exits at max_use") {
    TmpDir dir;
    std::string sock = dir.path + "/sock";
    int lfd = unix_listener(sock);
    int status[2];
    REQUIRE(pipe(status) == 0);
    DaemonHooks hooks;
    hooks.on_data = [](Connection& c) {
        if (c.input().find('\n') == std::string::npos) return;
        c.write("got " + c.input());
        c.consume(c.input().size());
        c.close_after_write();
    };
    pid_t pid = fork_daemon(ServerMode::Single, hooks, dir.path, lfd, status[1], "max_use = 2\n");
    close(lfd);
    close(status[1]);
    for (const char* msg : {"one\n", "two\n"}) {
        int c = unix_connect(sock);
        REQUIRE(write(c, msg, strlen(msg)) == static_cast<ssize_t>(strlen(msg)));
        CHECK(read_all(c) == std::string("got ") + msg);
        close(c);
    }
    CHECK(wait_exit(pid) == 0);  // max_use = 2
    std::string reports = read_all(status[0]);
    close(status[0]);
    REQUIRE(reports.size() == 5 * kStatusMessageSize);  // avail, (taken, avail) x 2
    std::string expect = "ATATA";
    for (size_t i = 0; i < expect.size(); ++i) {
        StatusBytes b;
        std::memcpy(b.data(), reports.data() + i * kStatusMessageSize, kStatusMessageSize);
        auto m = decode_status(b);
        REQUIRE(m);
        CHECK(m->pid == pid);
        CHECK((m->avail == Availability::Available ? 'A' : 'T') == expect[i]);
    }
}

TEST_CASE("multi server answers attribute requests from several clients and ipc_call reads them") {
    TmpDir dir;
    std::string sock = dir.path + "/sock";
    int lfd = unix_listener(sock);
    DaemonHooks hooks;
    hooks.on_request = [](Connection& c, const ipc::AttrRecord& r) {
        ipc::AttrRecord reply;
        reply.add("echo", r.find("word").value_or("?"));
        reply.add_long("conn", static_cast<long>(c.id()));
        if (r.find("quit")) c.context().request_exit();
        return reply;
    };
    hooks.max_input = 100;
    pid_t pid = fork_daemon(ServerMode::Multi, hooks, dir.path, lfd, -1);
    close(lfd);
    IpcClient a(sock, 5), b(sock, 5);
    ipc::AttrRecord req;
    req.add("word", "hi\nthere");
    auto ra = a.call(req);
    REQUIRE(ra.ok());
    CHECK(*ra->find("echo") == "hi\nthere");
    auto rb = b.call(req);
    REQUIRE(rb.ok());
    CHECK(*rb->find("conn") != *ra->find("conn"));  // two live connections in one process
    auto ra2 = a.call(req);
    REQUIRE(ra2.ok());
    CHECK(*ra2->find("conn") == *ra->find("conn"));  // the kept connection is reused

    // More than max_input bytes without a complete record: the server hangs up.
    int c = unix_connect(sock);
    std::string big(300, 'a');
    REQUIRE(write(c, big.data(), big.size()) == 300);
    CHECK(read_all(c).empty());
    close(c);

    ipc::AttrRecord quit;
    quit.add("quit", "1");
    auto q = ipc_call(sock, quit, 5);
    INFO((q.ok() ? std::string("ok") : q.error()));
    CHECK(q.ok());
    CHECK(wait_exit(pid) == 0);
}

TEST_CASE("a request server sends each reply before it serves the next request sent ahead") {
    TmpDir dir;
    std::string sock = dir.path + "/sock";
    int lfd = unix_listener(sock);
    int go[2];
    REQUIRE(pipe(go) == 0);
    DaemonHooks hooks;
    // The second request is served only once the client has the first reply (the client
    // says so on the pipe); a reply held back until then would never come.
    hooks.on_request = [&go](Connection&, const ipc::AttrRecord& r) {
        std::string word(r.find("word").value_or("?"));
        if (word == "second") {
            pollfd p{go[0], POLLIN, 0};
            char byte = 0;
            if (poll(&p, 1, 20000) != 1 || read(go[0], &byte, 1) != 1) word = "not told";
        }
        ipc::AttrRecord reply;
        reply.add("echo", word);
        return reply;
    };
    pid_t pid = fork_daemon(ServerMode::Single, hooks, dir.path, lfd, -1);
    close(lfd);
    close(go[0]);
    int c = unix_connect(sock);
    ipc::AttrRecord first, second;
    first.add("word", "first");
    second.add("word", "second");
    std::string both = ipc::encode_record(first) + ipc::encode_record(second);
    REQUIRE(write(c, both.data(), both.size()) == static_cast<ssize_t>(both.size()));
    ipc::AttrDecoder decoder;
    auto next_reply = [&]() -> std::optional<ipc::AttrRecord> {
        for (;;) {
            if (auto rec = decoder.next()) return rec;
            pollfd p{c, POLLIN, 0};
            char buf[512];
            ssize_t n = poll(&p, 1, 20000) == 1 ? read(c, buf, sizeof buf) : 0;
            if (n <= 0) return std::nullopt;
            REQUIRE(decoder.feed(std::string_view(buf, static_cast<size_t>(n))));
        }
    };
    auto r1 = next_reply();
    REQUIRE(r1);
    CHECK(*r1->find("echo") == "first");
    REQUIRE(write(go[1], "g", 1) == 1);
    auto r2 = next_reply();
    REQUIRE(r2);
    CHECK(*r2->find("echo") == "second");
    close(c);
    close(go[1]);
    kill(pid, SIGTERM);
    wait_exit(pid);
}

TEST_CASE("ipc_call reports a missing socket and a server that does not answer") {
    TmpDir dir;
    std::string sock = dir.path + "/sock";
    ipc::AttrRecord req;
    req.add("x", "1");
    auto missing = ipc_call(sock, req, 1);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "connect to " + sock + ": No such file or directory");
    int lfd = unix_listener(sock);  // accepts (backlog) but never answers
    auto silent = ipc_call(sock, req, 1);
    REQUIRE_FALSE(silent.ok());
    CHECK(silent.error() == "timeout reading from " + sock);
    close(lfd);
}
