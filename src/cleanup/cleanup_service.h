// The cleanup(8) service: one message at a time per client connection, as the record
// stream of util/ipc/mail_proto.h (open, envelope, content..., end), with the result
// sent after the group commit. A client that breaks the protocol or goes away loses its
// unfinished message (the queue file is removed); nothing acknowledged is ever lost.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "cleanup_addresses.h"
#include "cleanup_commit.h"
#include "cleanup_message.h"
#include "cleanup_settings.h"
#include "util/daemon/server.h"
#include "util/queue/queue_layout.h"

namespace postern::cleanup {

class CleanupService {
public:
    void post_jail_init(daemon::ServerContext& ctx);
    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record);
    void disconnect(daemon::Connection& conn);
    void exit();

private:
    struct Session {
        daemon::Connection* conn = nullptr;
        std::unique_ptr<CleanupMessage> message;
        bool waiting = false;  // the message is in the group commit
    };

    ipc::AttrRecord open(Session& s, const ipc::AttrRecord& record);
    ipc::AttrRecord end(Session& s, uint64_t client);
    ipc::AttrRecord protocol_error(Session& s, const char* what);
    void reply(uint64_t client, const ipc::mail::CleanupResult& result);

    std::unique_ptr<Settings> settings_;
    std::unique_ptr<AddressRewriter> rewriter_;
    queue::Layout layout_;
    std::unique_ptr<GroupCommit> commit_;
    std::unordered_map<uint64_t, Session> sessions_;
};

}  // namespace postern::cleanup
