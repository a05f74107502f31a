// A dnsmasq serving fixed test records on 127.0.0.1 and a free port, for the resolver
// and restriction tests. Names under .test and in-addr.arpa are local: anything not
// listed is NXDOMAIN. Names under tempfail.test are forwarded to a closed port, so they
// fail temporarily (SERVFAIL/REFUSED).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

extern char** environ;

namespace postern::test {

inline const char* kDnsRecords =
    "no-resolv\nno-hosts\nlocal=/test/\nlocal=/in-addr.arpa/\n"
    "host-record=mail.example.test,127.0.0.9\n"
    "host-record=good.example.test,127.0.0.9\n"
    "host-record=nomatch.example.test,127.0.0.99\n"
    "host-record=v6.example.test,2001:db8::1\n"
    "ptr-record=9.0.0.127.in-addr.arpa,good.example.test\n"
    "ptr-record=10.0.0.127.in-addr.arpa,nomatch.example.test\n"
    "mx-host=mxdomain.test,mail.example.test,10\n"
    "mx-host=mxdomain.test,mail2.example.test,5\n"
    "mx-host=nullmx.test,,0\n"
    "txt-record=nomx.example.test,\"v=spf1 -all\"\n"
    "host-record=2.0.0.127.rbl.test,127.0.0.2\n"
    "txt-record=2.0.0.127.rbl.test,\"listed for testing\"\n"
    "host-record=9.0.0.127.rbl.test,127.0.0.4\n"
    "host-record=2.0.0.127.dnswl.test,127.0.10.1\n"
    "host-record=spam.example.test.rhsbl.test,127.0.0.2\n"
    "host-record=client.example.rhsbl.test,127.0.0.2\n"
    "server=/tempfail.test/127.0.0.1#9\n";

class DnsServer {
public:
    DnsServer() {
        port_ = pick_port();
        conf_ = "/tmp/postern-dnsmasq-" + std::to_string(getpid()) + ".conf";
        std::ofstream(conf_) << kDnsRecords;
        std::string conf_arg = "--conf-file=" + conf_, port_arg = "--port=" + std::to_string(port_);
        const char* argv[] = {"/usr/sbin/dnsmasq", conf_arg.c_str(), "--keep-in-foreground",
                              "--listen-address=127.0.0.1", "--bind-interfaces", port_arg.c_str(),
                              "--pid-file=", "--log-facility=/dev/null", "--user=root", nullptr};
        if (posix_spawn(&pid_, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ) != 0) pid_ = 0;
        // Ready when the port is taken.
        for (int i = 0; i < 100 && pid_ > 0 && port_free(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ~DnsServer() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
        unlink(conf_.c_str());
    }
    bool running() const { return pid_ > 0; }
    std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    static bool port_free(int port) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        close(fd);
        return ok;
    }
    static int pick_port() {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        close(fd);
        return ntohs(a.sin_port);
    }
    pid_t pid_ = 0;
    int port_ = 0;
    std::string conf_;
};

}  // namespace postern::test
