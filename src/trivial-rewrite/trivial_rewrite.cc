// trivial-rewrite(8): address rewriting and resolving for cleanup, qmgr, smtpd and
// local, as Postfix's trivial-rewrite. Requests and replies are the Rewrite*/Resolve*
// records of util/ipc/mail_proto.h; the rules live in util/rewrite/ (rewrite.h for
// "rewrite", resolve.h for "resolve" and "verify"). Tables are opened once, before the
// jail and opened again when postmap rebuilds one.
#include <memory>

#include "util/daemon/server.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"
#include "util/rewrite/rewrite.h"

namespace postern::trivial_rewrite {
namespace {

namespace mail = ipc::mail;

class RewriteService {
public:
    void pre_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        const config::Config& c = ctx.config();
        local_ = rewrite::RewriteContext::local(c);
        remote_ = rewrite::RewriteContext::remote(c);
        auto r = rewrite::Resolver::create(c);
        if (!r) log::fatal("%s", r.error().c_str());
        resolver_ = std::move(*r);
    }

    // A rebuilt table (postmap) is opened again before the request is answered, so
    // the answer always reflects the table on disk (Postfix restarts the process).
    void refresh(daemon::ServerContext& ctx) {
        if (!resolver_ || !resolver_->changed()) return;
        auto r = rewrite::Resolver::create(ctx.config());
        if (!r) {
            log::warn("%s; keeping the tables opened before", r.error().c_str());
            return;
        }
        log::info("lookup table has changed -- reopening");
        resolver_ = std::move(*r);
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto name = record.find("request");
        std::string request = name ? std::string(*name) : std::string();
        if (request == "rewrite") return rewrite(conn, record);
        if (request == "resolve" || request == "verify") {
            refresh(conn.context());
            return resolve(conn, record);
        }
        log::warn("unrecognized request: \"%s\", ignored", request.c_str());
        conn.close_after_write();
        return {};
    }

private:
    ipc::AttrRecord rewrite(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto req = mail::RewriteRequest::from_record(record);
        if (!req) return malformed(conn, req.error());
        const rewrite::RewriteContext* ctx = req->rule == "local"    ? &local_
                                             : req->rule == "remote" ? &remote_
                                                                     : nullptr;
        if (ctx == nullptr) {
            log::warn("unknown context: %s", req->rule.c_str());
            conn.close_after_write();
            return {};
        }
        mail::RewriteReply reply;
        reply.address = rewrite::rewrite_address(*ctx, req->address);
        return reply.to_record();
    }

    ipc::AttrRecord resolve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto req = mail::ResolveRequest::from_record(record);
        if (!req) return malformed(conn, req.error());
        return resolver_->resolve(req->sender, req->address, req->request == "verify").to_record();
    }

    ipc::AttrRecord malformed(daemon::Connection& conn, const std::string& why) {
        log::warn("malformed request: %s", why.c_str());
        conn.close_after_write();
        return {};
    }

    rewrite::RewriteContext local_, remote_;
    std::unique_ptr<rewrite::Resolver> resolver_;
};

}  // namespace
}  // namespace postern::trivial_rewrite

int main(int argc, char** argv) {
    using namespace postern;
    trivial_rewrite::RewriteService service;
    daemon::DaemonHooks hooks;
    hooks.pre_jail_init = [&](daemon::ServerContext& ctx) { service.pre_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    hooks.max_input = 64 * 1024;  // requests are a few short attributes
    return daemon::run_multi_server(argc, argv, hooks);
}
