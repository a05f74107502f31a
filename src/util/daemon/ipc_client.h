// The client side of Postern's request/response protocol: one attribute record out, one
// back, over a UNIX-domain stream socket, with a time limit on connect, send and
// receive. IpcClient keeps its connection between calls (a service such as anvil ties
// state to the client connection) and reconnects once when the server closed it.
#pragma once

#include <string>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/ipc/attr.h"

namespace postern::daemon {

class IpcClient {
public:
    IpcClient(std::string path, long timeout_seconds) : path_(std::move(path)), timeout_(timeout_seconds) {}

    // Errors name the socket: "connect to private/anvil: No such file or directory",
    // "timeout reading from private/anvil".
    Result<ipc::AttrRecord> call(const ipc::AttrRecord& request);
    // Streams (cleanup): records that get no reply, then one that does. send() connects
    // when needed and does not retry; receive() waits for one reply record.
    Status send(const ipc::AttrRecord& record);
    Result<ipc::AttrRecord> receive();
    void disconnect() { fd_.reset(); }
    bool connected() const { return fd_.valid(); }
    // Postfix's ipc_idle/ipc_ttl for stateless services (trivial-rewrite): a kept
    // connection idle longer than `idle` seconds, or older than `ttl`, is closed before
    // the next call, so a server that master asked to go away (reload, max_use) is left.
    // 0 = keep forever (the default: anvil ties state to the connection).
    void set_idle_limits(long idle_seconds, long ttl_seconds) {
        idle_ms_ = idle_seconds * 1000L;
        ttl_ms_ = ttl_seconds * 1000L;
    }

private:
    Status connect_socket();
    Result<ipc::AttrRecord> exchange(const std::string& wire, bool& retryable);
    Status write_all(const std::string& wire, long deadline_ms, bool& retryable);
    Result<ipc::AttrRecord> read_reply(long deadline_ms, bool& retryable);

    void expire_kept_connection();

    std::string path_;
    long timeout_;
    UniqueFd fd_;
    long idle_ms_ = 0, ttl_ms_ = 0;
    long connected_ms_ = 0, used_ms_ = 0;
};

// One request on a fresh connection.
Result<ipc::AttrRecord> ipc_call(const std::string& path, const ipc::AttrRecord& request,
                                 long timeout_seconds);

}  // namespace postern::daemon
