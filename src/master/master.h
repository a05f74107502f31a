// master(8): the process manager. It reads master.cf, opens every listening endpoint,
// and starts a service's daemon when a client is waiting and no process of the service
// is idle (as Postfix's master: it watches a listening socket only while all children
// are busy). Children report busy/idle on the service's status pipe; a child that dies
// is replaced on demand; a service whose child dies before serving anyone is throttled
// for service_throttle_time.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/config/config.h"
#include "util/config/master_cf.h"

struct event;
struct event_base;

namespace postern::master {

struct EventFree {
    void operator()(event* e) const;
};
using EventPtr = std::unique_ptr<event, EventFree>;

struct Child {
    pid_t pid = 0;
    unsigned generation = 0;
    bool available = false;
    long use_count = 0;  // times it reported "taken"
};

class Master;

struct Service {
    Master* master = nullptr;
    config::MasterService entry;
    std::string key;        // "name/type"
    std::string path;       // daemon_directory/command
    std::string endpoint;   // socket or fifo path; "host:port" for inet
    std::vector<UniqueFd> listen_fds;
    UniqueFd status_read, status_write;
    int max_proc = 0;  // 0: no limit
    unsigned generation = 0;
    std::map<pid_t, Child> children;
    int avail = 0;
    bool throttled = false;
    bool listening = false;  // master watches listen_fds
    bool used = false;       // for conditional wakeups ("60?")
    std::vector<EventPtr> listen_events;
    EventPtr status_event, wakeup_timer, throttle_timer;
};

// Settings master needs from main.cf.
struct MasterSettings {
    std::string config_dir;
    std::string queue_directory;
    std::string daemon_directory;
    std::string mail_owner;
    std::string setgid_group;
    std::string inet_interfaces;
    long throttle_time = 60;
    int process_limit = 100;
    int verbose = 0;
};

Result<MasterSettings> read_settings(const config::Config& config, const std::string& config_dir);

// Opens the endpoint of `service` (fills listen_fds and endpoint); false with a warning
// logged when it cannot (the service is then skipped).
Status open_endpoint(Service& service, const MasterSettings& settings);
// Removes the unix socket or fifo file of a service that went away.
void remove_endpoint(const Service& service);
// Writes a wake-up request ("W") to a fifo or unix service, as Postfix's master does.
void send_wakeup(const Service& service);

class Master {
public:
    Master(event_base* base, MasterSettings settings);
    ~Master();
    // Opens and starts every service of `cf`; on reload keeps unchanged services.
    void configure(const config::MasterCf& cf);
    // `main_cf_changed`: the processes of kept services were started with the old
    // main.cf, so they are told to finish their clients and leave (SIGHUP); new ones
    // start on demand with the new settings.
    void reload(MasterSettings settings, const config::MasterCf& cf, bool main_cf_changed);
    // SIGTERM to every child, then waits for them (SIGKILL after `grace` seconds).
    void stop_all(long grace);
    void reap_children();
    size_t child_count() const;

    // Event callbacks (public for the C callbacks of libevent).
    std::unique_ptr<Service> make_service(const config::MasterService& entry);
    void start_service(Service& s);
    void stop_service(Service& s);
    void listen_on(Service& s, bool on);
    void update_listening(Service& s);
    void spawn(Service& s);
    void read_status(Service& s);
    void child_exited(Service& s, pid_t pid, int status);
    void throttle(Service& s);
    Service* owner_of(pid_t pid);
    void retire_children(Service& s);
    void refresh_children(Service& s);

private:

    event_base* base_;
    MasterSettings settings_;
    std::map<std::string, std::unique_ptr<Service>> services_;
    unsigned next_generation_ = 1;
    // Children of services that a reload removed or changed: told to stop, reaped later.
    std::map<pid_t, std::string> retired_;
};

}  // namespace postern::master
