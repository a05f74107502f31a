// discard(8): the delivery agent that reports every recipient of a request as delivered
// without delivering anything, with the next-hop text as the reason ("status=sent
// (discarded)"), as Postfix's discard(8). A next-hop that starts with a 2.x.x code sets
// the status; any other code is ignored (2.0.0).
#include <sys/time.h>

#include "util/daemon/server.h"
#include "util/dsn/uniform_verdict.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::discard_agent {
namespace {

namespace mail = ipc::mail;

class DiscardService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        delay_digits_ = static_cast<int>(ctx.config().get_int("delay_logging_resolution_limit"));
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        timeval handoff{};
        gettimeofday(&handoff, nullptr);
        auto req = mail::DeliveryRequest::from_record(record);
        if (!req) {
            log::warn("malformed delivery request: %s", req.error().c_str());
            conn.close_after_write();
            return {};
        }
        return dsn::apply_verdict(*req, dsn::verdict_from_nexthop(req->nexthop, "2.0.0"), handoff, delay_digits_)
            .to_record();
    }

private:
    int delay_digits_ = 2;
};

}  // namespace
}  // namespace postern::discard_agent

int main(int argc, char** argv) {
    using namespace postern;
    discard_agent::DiscardService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    return daemon::run_single_server(argc, argv, hooks);
}
