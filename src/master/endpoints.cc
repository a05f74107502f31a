// Listening endpoints of master.cf services: unix and unix-dgram sockets and fifos in
// queue_directory/{public,private}, and inet sockets.
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "master/master.h"
#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::master {
namespace {

std::string errno_text() { return std::strerror(errno); }

// public/ and private/ as postfix-script makes them, when an instance lacks them.
void ensure_directory(const std::string& dir, mode_t mode, const MasterSettings& s, bool group) {
    struct stat st{};
    if (stat(dir.c_str(), &st) == 0) return;
    if (mkdir(dir.c_str(), mode) < 0 && errno != EEXIST) {
        log::warn("mkdir %s: %s", dir.c_str(), errno_text().c_str());
        return;
    }
    chmod(dir.c_str(), mode);
    if (geteuid() != 0) return;
    struct passwd* pw = getpwnam(s.mail_owner.c_str());
    struct group* gr = group ? getgrnam(s.setgid_group.c_str()) : nullptr;
    if (pw != nullptr && chown(dir.c_str(), pw->pw_uid, gr ? gr->gr_gid : pw->pw_gid) < 0)
        log::warn("chown %s: %s", dir.c_str(), errno_text().c_str());
}

// The socket is made under a temporary name and renamed into place once it listens, so
// a client never finds the name before the socket accepts connections.
Result<UniqueFd> unix_listen(const std::string& path, int socktype) {
    std::string tmp = path + ".new";
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (tmp.size() >= sizeof sun.sun_path) return make_error("unix-domain name too long: " + path);
    std::memcpy(sun.sun_path, tmp.c_str(), tmp.size() + 1);
    UniqueFd fd(socket(AF_UNIX, socktype | SOCK_CLOEXEC, 0));
    if (!fd) return make_error("socket: " + errno_text());
    if (unlink(tmp.c_str()) < 0 && errno != ENOENT)
        return make_error("remove " + tmp + ": " + errno_text());
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0)
        return make_error("bind " + path + ": " + errno_text());
    // Access is controlled by the directory (private/ is mail_owner only), as in Postfix.
    if (chmod(tmp.c_str(), 0666) < 0) return make_error("chmod socket " + path + ": " + errno_text());
    if (socktype == SOCK_STREAM && listen(fd.get(), 100) < 0)
        return make_error("listen " + path + ": " + errno_text());
    if (rename(tmp.c_str(), path.c_str()) < 0) return make_error("rename " + tmp + ": " + errno_text());
    return fd;
}

Result<UniqueFd> fifo_listen(const std::string& path) {
    if (mkfifo(path.c_str(), 0622) < 0 && errno != EEXIST)
        return make_error("create fifo " + path + ": " + errno_text());
    struct stat st{};
    if (stat(path.c_str(), &st) < 0 || !S_ISFIFO(st.st_mode)) return make_error(path + " is not a fifo");
    // Opened read-write so it never reports end-of-file when a writer leaves.
    UniqueFd fd(open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return make_error("open fifo " + path + ": " + errno_text());
    chmod(path.c_str(), 0622);
    return fd;
}

Result<UniqueFd> inet_listen_one(const addrinfo* ai) {
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) return make_error("socket: " + errno_text());
    int on = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ai->ai_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) return make_error("bind: " + errno_text());
    if (listen(fd.get(), 100) < 0) return make_error("listen: " + errno_text());
    return fd;
}

// Hosts to bind for an inet service: its own host, else inet_interfaces.
std::vector<std::string> inet_hosts(const Service& s, const MasterSettings& settings) {
    if (!s.entry.inet_host.empty()) return {s.entry.inet_host};
    std::vector<std::string> out;
    for (std::string_view h : split_tokens(settings.inet_interfaces, ", \t\r\n")) {
        std::string v = lowercase(h);
        if (v == "all") return {""};
        if (v == "loopback-only" || v == "localhost") {
            out.push_back("127.0.0.1");
            continue;
        }
        if (v.size() > 2 && v.front() == '[' && v.back() == ']') v = v.substr(1, v.size() - 2);
        out.push_back(v);
    }
    if (out.empty()) out.push_back("");
    return out;
}

Status inet_open(Service& s, const MasterSettings& settings) {
    for (const std::string& host : inet_hosts(s, settings)) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* res = nullptr;
        std::string port = s.entry.inet_port;
        if (!port.empty() && !isdigit(static_cast<unsigned char>(port[0]))) {
            struct servent* se = getservbyname(port.c_str(), "tcp");
            if (se == nullptr) return make_error("unknown service: " + port + "/tcp");
            port = std::to_string(ntohs(static_cast<uint16_t>(se->s_port)));
        }
        int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0) return make_error("host/service " + host + "/" + port + " not found: " + gai_strerror(rc));
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
            auto fd = inet_listen_one(ai);
            if (!fd) {
                freeaddrinfo(res);
                return make_error("bind " + (host.empty() ? std::string("*") : host) + " port " + port + ": " +
                                  fd.error().substr(6));
            }
            s.listen_fds.push_back(std::move(*fd));
        }
        freeaddrinfo(res);
    }
    return {};
}

}  // namespace

Result<MasterSettings> read_settings(const config::Config& config, const std::string& config_dir) {
    MasterSettings s;
    s.config_dir = config_dir;
    auto q = config.try_get("queue_directory");
    if (!q) return make_error(q.error());
    s.queue_directory = *q;
    s.daemon_directory = config.get("daemon_directory");
    s.mail_owner = config.get("mail_owner");
    s.setgid_group = config.get("setgid_group");
    s.inet_interfaces = config.get("inet_interfaces");
    auto t = config.try_get_time("service_throttle_time");
    if (!t) return make_error(t.error());
    s.throttle_time = *t;
    auto p = config.try_get_int("default_process_limit");
    if (!p) return make_error(p.error());
    s.process_limit = static_cast<int>(*p);
    return s;
}

Status open_endpoint(Service& s, const MasterSettings& settings) {
    using config::ServiceType;
    const auto& e = s.entry;
    if (e.type == ServiceType::Inet) {
        s.endpoint = e.name;
        return inet_open(s, settings);
    }
    if (e.type == ServiceType::Pass) return make_error("service type \"pass\" is not supported yet");
    std::string sub = e.private_service ? "private" : "public";
    std::string dir = settings.queue_directory + "/" + sub;
    ensure_directory(dir, e.private_service ? 0700 : 0710, settings, !e.private_service);
    s.endpoint = dir + "/" + e.name;
    Result<UniqueFd> fd = e.type == ServiceType::Fifo ? fifo_listen(s.endpoint)
                          : e.type == ServiceType::UnixDgram ? unix_listen(s.endpoint, SOCK_DGRAM)
                                                             : unix_listen(s.endpoint, SOCK_STREAM);
    if (!fd) return make_error(fd.error());
    s.listen_fds.push_back(std::move(*fd));
    return {};
}

void remove_endpoint(const Service& s) {
    if (s.entry.type != config::ServiceType::Inet && !s.endpoint.empty()) unlink(s.endpoint.c_str());
}

void send_wakeup(const Service& s) {
    using config::ServiceType;
    static const char kWakeup[] = "W";
    if (s.entry.type == ServiceType::Fifo) {
        UniqueFd fd(open(s.endpoint.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        if (!fd || write(fd.get(), kWakeup, 1) != 1) log::warn("wakeup %s: %s", s.endpoint.c_str(), errno_text().c_str());
        return;
    }
    if (s.entry.type != ServiceType::Unix && s.entry.type != ServiceType::UnixDgram) return;
    int type = s.entry.type == ServiceType::Unix ? SOCK_STREAM : SOCK_DGRAM;
    UniqueFd fd(socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, s.endpoint.c_str(), std::min(s.endpoint.size() + 1, sizeof sun.sun_path - 1));
    if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0 ||
        send(fd.get(), kWakeup, 1, MSG_NOSIGNAL) != 1)
        log::warn("wakeup %s: %s", s.endpoint.c_str(), errno_text().c_str());
}

}  // namespace postern::master
