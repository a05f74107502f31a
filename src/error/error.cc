// error(8): the delivery agent that fails every recipient of a request, with the
// next-hop text as the reason ("5.1.1 User unknown in virtual alias table"; a missing or
// wrong-class code becomes 5.0.0). Run under the service name "retry" it defers them
// instead (4.0.0 by default), as Postfix's error(8) does. qmgr turns the replies into
// bounce or defer log entries; this agent only logs and answers.
#include <sys/time.h>

#include "util/daemon/server.h"
#include "util/dsn/uniform_verdict.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::error_agent {
namespace {

namespace mail = ipc::mail;

class ErrorService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        defer_ = ctx.args().service_name == "retry";
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
        dsn::Verdict verdict = dsn::verdict_from_nexthop(req->nexthop, defer_ ? "4.0.0" : "5.0.0");
        return dsn::apply_verdict(*req, verdict, handoff, delay_digits_).to_record();
    }

private:
    bool defer_ = false;
    int delay_digits_ = 2;
};

}  // namespace
}  // namespace postern::error_agent

int main(int argc, char** argv) {
    using namespace postern;
    error_agent::ErrorService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    return daemon::run_single_server(argc, argv, hooks);
}
