// bounce(8) main: the bounce, defer and trace services of master.cf run this program;
// each request is one BounceRequest (util/ipc/mail_proto.h) answered by one BounceReply
// after the notices are queued. The work is in notify.cc; notices are composed by
// util/dsn.
#include "bounce/bounce.h"
#include "util/daemon/server.h"
#include "util/log/log.h"
#include "util/queue/queue_id.h"

namespace postern::bounce {
namespace {

namespace mail = ipc::mail;

class BounceService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        settings_ = load_settings(ctx.config());
        auto layout = queue::Layout::from_config(ctx.config());
        if (!layout) log::fatal("%s", layout.error().c_str());
        layout_ = *layout;
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto req = mail::BounceRequest::from_record(record);
        if (!req) {
            log::warn("malformed bounce request: %s", req.error().c_str());
            conn.close_after_write();
            return {};
        }
        // Both go into paths; Layout treats a bad one as a programming error.
        if (!queue::queue_name_ok(req->queue_name) || !queue::id_ok(req->queue_id)) {
            log::warn("bad queue name or id in bounce request: %s %s", req->queue_name.c_str(),
                      req->queue_id.c_str());
            return mail::BounceReply{1, ""}.to_record();
        }
        return handle_request(settings_, layout_, *req).to_record();
    }

private:
    Settings settings_;
    queue::Layout layout_;
};

}  // namespace
}  // namespace postern::bounce

int main(int argc, char** argv) {
    using namespace postern;
    bounce::BounceService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    return daemon::run_multi_server(argc, argv, hooks);
}
