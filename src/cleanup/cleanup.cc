// cleanup(8): canonicalizes and enqueues one message per request stream — address
// rewriting and mapping, header and body checks, missing headers, limits — and answers
// only after the queue file is durable (group commit). See man/man8/cleanup.8.
#include "cleanup_service.h"
#include "util/daemon/server.h"

int main(int argc, char** argv) {
    using namespace postern;
    cleanup::CleanupService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    hooks.on_disconnect = [&](daemon::Connection& c) { service.disconnect(c); };
    hooks.on_exit = [&](daemon::ServerContext&) { service.exit(); };
    hooks.max_input = 4u << 20;  // one content record (64 KiB from the client stub) and more
    return daemon::run_multi_server(argc, argv, hooks);
}
