// The one daemon skeleton (Postfix's mail_server.h in C++): a daemon's main() fills a
// DaemonHooks struct and calls one of
//   run_multi_server()   many clients per process, event-driven (anvil, smtpd, cleanup)
//   run_single_server()  one client at a time (delivery agents)
//   run_trigger_server() wake-up requests on a fifo or socket (pickup, qmgr)
// The skeleton parses the daemon arguments (daemon_args.h), loads main.cf with the
// service's -o overrides, sets up logging, changes to queue_directory, chroots and drops
// privileges when master asks for it and we are root, then runs a libevent loop over the
// listening descriptors master handed over (kListenFd...). It reports busy/idle on the
// status pipe (kStatusFd), exits after max_idle seconds without clients or after max_use
// clients, exits when master goes away, on SIGTERM at once and on SIGHUP once idle.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/config/config.h"
#include "util/daemon/daemon_args.h"
#include "util/ipc/attr.h"

struct event_base;
struct bufferevent;
typedef struct ssl_st SSL;

namespace postern::daemon {

class Server;
class Connection;

// What a hook may see and change about the running server.
class ServerContext {
public:
    ServerContext(Server& server, config::Config& config, const DaemonArgs& args)
        : server_(server), config_(config), args_(args) {}

    config::Config& config() { return config_; }
    const DaemonArgs& args() const { return args_; }
    event_base* base();

    // Limits a post_jail_init hook may change (anvil raises max_idle to its time unit and
    // sets max_use to 0, "no limit").
    long max_idle = 100;
    long max_use = 100;

    // Runs `fn` every `seconds` seconds (once when repeat is false) on the event loop.
    void add_timer(long seconds, bool repeat, std::function<void()> fn);
    // Leaves the event loop after the current callback, running on_exit.
    void request_exit();

private:
    Server& server_;
    config::Config& config_;
    const DaemonArgs& args_;
};

struct DaemonHooks {
    // Before chroot and privilege drop (open files only root may open).
    std::function<void(ServerContext&)> pre_jail_init;
    // After chroot and privilege drop, before the first client.
    std::function<void(ServerContext&)> post_jail_init;
    // Stream clients (multi and single server).
    std::function<void(Connection&)> on_connection;
    // New input is in conn.input(); consume what was used. Not called when on_request is set.
    std::function<void(Connection&)> on_data;
    // Request/response clients: one attribute record in, one reply out.
    std::function<ipc::AttrRecord(Connection&, const ipc::AttrRecord&)> on_request;
    std::function<void(Connection&)> on_disconnect;
    // The TLS handshake that Connection::start_tls began has completed.
    std::function<void(Connection&)> on_tls_handshake;
    // Trigger server: the bytes of one wake-up request.
    std::function<void(ServerContext&, std::string_view)> on_trigger;
    // Before the loop waits for the next event.
    std::function<void(ServerContext&)> on_pre_accept;
    // Before a voluntary or SIGTERM exit.
    std::function<void(ServerContext&)> on_exit;

    // Bounded input: a client that sends more than this without it being consumed, or
    // stays silent longer than the timeout (0: ipc_timeout), is disconnected.
    size_t max_input = 1 << 20;
    long read_timeout = 0;
};

// One client stream: bounded, event-driven reads and buffered writes.
class Connection {
public:
    Connection(Server& server, uint64_t id, bufferevent* bev);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uint64_t id() const { return id_; }
    int fd() const;
    ServerContext& context();

    // Bytes received and not yet consumed.
    std::string& input() { return input_; }
    void consume(size_t n) { input_.erase(0, n); }
    void write(std::string_view data);
    // Closes once everything written has been sent.
    void close_after_write();
    // Stops delivering input to on_data until resume_input() (a session waiting for
    // cleanup or DNS must not read ahead without bound); resume re-runs on_data on input
    // already buffered.
    void pause_input();
    void resume_input();
    // Idle read/write timeout of this connection in seconds (smtpd_timeout).
    void set_timeout(long seconds);
    // Wraps the connection in TLS as a server (STARTTLS, wrapper mode). Takes ownership of
    // `ssl`. Input already received and not consumed is discarded first (plaintext
    // pipelined after STARTTLS is an injection attempt, RFC 3207 section 6), output
    // already written goes out in plaintext before the handshake. hooks.on_tls_handshake
    // runs when the handshake completes; a failed handshake drops the connection.
    Status start_tls(SSL* ssl);
    bool tls_active() const { return tls_; }
    SSL* ssl() const;
    // The client as "host[addr]", for the skeleton's own lines about it (Postfix's
    // "SSL_accept error from host[addr]: -1" when a handshake fails); the session sets it.
    void set_peer_name(std::string namaddr) { peer_name_ = std::move(namaddr); }

private:
    friend class Server;
    Server& server_;
    uint64_t id_;
    bufferevent* bev_;
    std::string input_;
    std::unique_ptr<ipc::AttrDecoder> decoder_;
    bool closing_ = false;
    bool eof_ = false;
    bool paused_ = false;
    bool tls_ = false;
    bool tls_handshake_done_ = false;
    int fd_ = -1;        // the socket, still known once a TLS filter sits on top
    long timeout_ = 0;   // moved from the socket bufferevent to the TLS filter
    std::string peer_name_;
};

// Writes what the socket bufferevent still holds straight to the socket (best effort: the
// loop is over or the connection is going away). Under TLS that is the encrypted stream;
// the filter's unencrypted output is never written raw.
void flush_socket(bufferevent* bev);

enum class ServerMode { Multi, Single, Trigger };

// Each runs the daemon and returns its exit status (for `return run_...(...)` in main).
int run_multi_server(int argc, char** argv, const DaemonHooks& hooks);
int run_single_server(int argc, char** argv, const DaemonHooks& hooks);
int run_trigger_server(int argc, char** argv, const DaemonHooks& hooks);

// The part after argument parsing and config loading (tests and programs that build
// their own Config): chdir to queue_directory, jail, privileges, event loop.
int run_daemon(ServerMode mode, const DaemonHooks& hooks, config::Config& config,
               const DaemonArgs& args);

}  // namespace postern::daemon
