// Master's service table: start, spawn on demand, status reports, reaping, throttling,
// wake-ups and reload.
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "master/master.h"
#include "util/daemon/daemon_args.h"
#include "util/daemon/master_proto.h"
#include "util/log/log.h"

namespace postern::master {

void EventFree::operator()(event* e) const { event_free(e); }

Master::Master(event_base* base, MasterSettings settings) : base_(base), settings_(std::move(settings)) {}

Master::~Master() = default;

size_t Master::child_count() const {
    size_t n = retired_.size();
    for (const auto& [key, s] : services_) n += s->children.size();
    return n;
}

std::unique_ptr<Service> Master::make_service(const config::MasterService& entry) {
    auto s = std::make_unique<Service>();
    s->master = this;
    s->entry = entry;
    s->key = entry.name + "/" + std::string(config::service_type_name(entry.type));
    s->path = settings_.daemon_directory + "/" + entry.command;
    s->max_proc = entry.max_proc;
    if (access(s->path.c_str(), X_OK) < 0) {
        // Many daemons arrive in later releases; an entry for one is not an error yet.
        log::warn("master.cf: line %d: service %s: daemon program %s: %s -- skipped", entry.line,
                  entry.name.c_str(), s->path.c_str(), std::strerror(errno));
        return nullptr;
    }
    if (Status st = open_endpoint(*s, settings_); !st) {
        log::warn("service %s: %s -- skipped", s->key.c_str(), st.error().c_str());
        return nullptr;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        log::warn("service %s: pipe: %s -- skipped", s->key.c_str(), std::strerror(errno));
        return nullptr;
    }
    s->status_read.reset(p[0]);
    s->status_write.reset(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    s->generation = next_generation_++;
    return s;
}

void Master::start_service(Service& s) {
    s.status_event.reset(event_new(
        base_, s.status_read.get(), EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void* arg) {
            auto* sv = static_cast<Service*>(arg);
            sv->master->read_status(*sv);
        },
        &s));
    event_add(s.status_event.get(), nullptr);
    for (const UniqueFd& fd : s.listen_fds) {
        s.listen_events.emplace_back(event_new(
            base_, fd.get(), EV_READ | EV_PERSIST,
            [](evutil_socket_t, short, void* arg) {
                auto* sv = static_cast<Service*>(arg);
                sv->master->spawn(*sv);
            },
            &s));
    }
    if (s.entry.wakeup_seconds > 0) {
        s.wakeup_timer.reset(event_new(
            base_, -1, EV_PERSIST,
            [](evutil_socket_t, short, void* arg) {
                auto* sv = static_cast<Service*>(arg);
                if (!sv->entry.wakeup_conditional || sv->used) send_wakeup(*sv);
            },
            &s));
        timeval tv{s.entry.wakeup_seconds, 0};
        event_add(s.wakeup_timer.get(), &tv);
    }
    update_listening(s);
    // As Postfix's master_wakeup_init: the first wakeup is at once, so that pickup finds
    // what was dropped into maildrop/ while the system was down.
    if (s.entry.wakeup_seconds > 0 && !s.entry.wakeup_conditional) send_wakeup(s);
}

void Master::listen_on(Service& s, bool on) {
    if (s.listening == on) return;
    s.listening = on;
    for (auto& e : s.listen_events) {
        if (on)
            event_add(e.get(), nullptr);
        else
            event_del(e.get());
    }
}

// Master accepts nothing itself: it watches the endpoint only while no child is idle and
// the process limit allows another, and starts one when a client waits.
void Master::update_listening(Service& s) {
    bool room = s.max_proc == 0 || static_cast<int>(s.children.size()) < s.max_proc;
    listen_on(s, !s.throttled && s.avail == 0 && room);
}

void Master::spawn(Service& s) {
    daemon::DaemonArgs a;
    a.service_name = s.entry.name;
    a.transport = std::string(config::service_type_name(s.entry.type));
    a.unprivileged = s.entry.unprivileged;
    a.chroot = s.entry.chroot;
    a.listen_count = static_cast<int>(s.listen_fds.size());
    a.verbose = settings_.verbose;
    a.solitary = s.max_proc == 1;
    a.zero_limit = s.max_proc == 0;
    std::vector<std::string> args = daemon::build_daemon_args(a);
    args.insert(args.begin(), s.path);
    args.insert(args.end(), s.entry.args.begin(), s.entry.args.end());

    pid_t pid = fork();
    if (pid < 0) {
        log::warn("fork: %s", std::strerror(errno));
        throttle(s);
        return;
    }
    if (pid == 0) {
        // Child: the status pipe and listening fds go to their fixed numbers. Copy them
        // out of the way first so a source never sits on a target number.
        std::vector<int> sources = {s.status_write.get()};
        for (const UniqueFd& fd : s.listen_fds) sources.push_back(fd.get());
        std::vector<int> tmp;
        for (int fd : sources) tmp.push_back(fcntl(fd, F_DUPFD, 100));
        for (size_t i = 0; i < tmp.size(); ++i) {
            int target = i == 0 ? daemon::kStatusFd : daemon::kListenFd + static_cast<int>(i) - 1;
            if (tmp[i] < 0 || dup2(tmp[i], target) < 0) _exit(1);
            close(tmp[i]);
        }
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            if (devnull > 2) close(devnull);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        signal(SIGPIPE, SIG_DFL);
        setenv("MAIL_CONFIG", settings_.config_dir.c_str(), 1);
        setenv(daemon::kGenerationEnv, std::to_string(s.generation).c_str(), 1);
        std::vector<char*> argv;
        for (std::string& x : args) argv.push_back(x.data());
        argv.push_back(nullptr);
        execv(s.path.c_str(), argv.data());
        log::fatal("%s: exec %s: %s", s.key.c_str(), s.path.c_str(), std::strerror(errno));
    }
    log::debug("spawn command %s; pid %d", s.path.c_str(), static_cast<int>(pid));
    // A new child counts as idle until it says otherwise, as in Postfix.
    s.children[pid] = Child{pid, s.generation, true, 0};
    ++s.avail;
    update_listening(s);
}

void Master::read_status(Service& s) {
    daemon::StatusBytes buf;
    for (;;) {
        ssize_t n = read(s.status_read.get(), buf.data(), buf.size());
        if (n != static_cast<ssize_t>(buf.size())) break;
        auto m = daemon::decode_status(buf);
        if (!m) {
            log::warn("service %s: bad status message", s.key.c_str());
            continue;
        }
        auto it = s.children.find(m->pid);
        if (it == s.children.end() || it->second.generation != m->generation) continue;
        Child& c = it->second;
        bool avail = m->avail == daemon::Availability::Available;
        if (avail && !c.available) ++s.avail;
        if (!avail) {
            if (c.available) --s.avail;
            ++c.use_count;
            s.used = true;
        }
        c.available = avail;
    }
    update_listening(s);
}

Service* Master::owner_of(pid_t pid) {
    for (auto& [key, s] : services_)
        if (s->children.count(pid)) return s.get();
    return nullptr;
}

void Master::reap_children() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (retired_.erase(pid)) continue;
        if (Service* s = owner_of(pid)) child_exited(*s, pid, status);
    }
}

void Master::child_exited(Service& s, pid_t pid, int status) {
    Child c = s.children[pid];
    s.children.erase(pid);
    if (c.available) --s.avail;
    bool normal = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (WIFEXITED(status) && !normal)
        log::warn("process %s pid %d exit status %d", s.path.c_str(), static_cast<int>(pid), WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        log::warn("process %s pid %d killed by signal %d", s.path.c_str(), static_cast<int>(pid), WTERMSIG(status));
    // A child that dies before serving anyone points at a broken command or setup:
    // starting it again at once would only loop.
    if (!normal && c.use_count == 0 && !s.throttled) {
        log::warn("%s: bad command startup -- throttling", s.path.c_str());
        throttle(s);
    }
    update_listening(s);
    // A wakeup service (qmgr, pickup) that died abnormally may have left work behind
    // (qmgr's active queue); wake its successor now rather than at the next timer tick.
    // The request waits in the socket backlog while the service is throttled.
    if (!normal && s.entry.wakeup_seconds > 0 && !s.entry.wakeup_conditional) send_wakeup(s);
}

void Master::throttle(Service& s) {
    if (s.throttled) return;
    s.throttled = true;
    s.throttle_timer.reset(event_new(
        base_, -1, 0,
        [](evutil_socket_t, short, void* arg) {
            auto* sv = static_cast<Service*>(arg);
            sv->throttled = false;
            sv->master->update_listening(*sv);
        },
        &s));
    timeval tv{settings_.throttle_time, 0};
    event_add(s.throttle_timer.get(), &tv);
    update_listening(s);
}

void Master::retire_children(Service& s) {
    for (auto& [pid, c] : s.children) {
        kill(pid, SIGTERM);
        retired_[pid] = s.key;
    }
    s.children.clear();
}

void Master::refresh_children(Service& s) {
    for (auto& [pid, c] : s.children) {
        kill(pid, SIGHUP);  // the skeleton stops accepting and leaves when its clients are done
        retired_[pid] = s.key;
    }
    s.children.clear();
    s.avail = 0;
    s.generation = next_generation_++;  // late status reports of the old ones are ignored
    update_listening(s);
}

void Master::stop_service(Service& s) {
    listen_on(s, false);
    retire_children(s);
}

void Master::configure(const config::MasterCf& cf) {
    for (const config::MasterService& entry : cf.services) {
        auto s = make_service(entry);
        if (!s) continue;
        if (services_.count(s->key)) {
            log::warn("master.cf: line %d: duplicate service %s -- skipped", entry.line, s->key.c_str());
            continue;
        }
        Service& ref = *s;
        services_[s->key] = std::move(s);
        start_service(ref);
    }
}

void Master::reload(MasterSettings settings, const config::MasterCf& cf, bool main_cf_changed) {
    settings_ = std::move(settings);
    std::map<std::string, const config::MasterService*> wanted;
    for (const auto& e : cf.services)
        wanted[e.name + "/" + std::string(config::service_type_name(e.type))] = &e;
    for (auto it = services_.begin(); it != services_.end();) {
        auto w = wanted.find(it->first);
        bool same = w != wanted.end() && w->second->raw_text == it->second->entry.raw_text &&
                    it->second->path == settings_.daemon_directory + "/" + w->second->command;
        if (same) {
            wanted.erase(w);  // unchanged: keep the endpoint, and the children unless main.cf changed
            if (main_cf_changed) refresh_children(*it->second);
            ++it;
            continue;
        }
        stop_service(*it->second);
        if (w == wanted.end()) remove_endpoint(*it->second);
        it = services_.erase(it);
    }
    config::MasterCf rest;
    for (const auto& e : cf.services)
        if (wanted.count(e.name + "/" + std::string(config::service_type_name(e.type)))) rest.services.push_back(e);
    configure(rest);
}

void Master::stop_all(long grace) {
    for (auto& [key, s] : services_) stop_service(*s);
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool killed = false;
    while (!retired_.empty()) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            retired_.erase(pid);
            continue;
        }
        if (pid < 0 && errno == ECHILD) break;
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!killed && now.tv_sec - start.tv_sec >= grace) {
            for (auto& [p, key] : retired_) kill(p, SIGKILL);
            killed = true;
        }
        usleep(20000);
    }
    retired_.clear();
}

}  // namespace postern::master
