// local(8) main: the request loop. One DeliveryRequest at a time (single server); the
// queue file is opened once per request, each recipient goes through the delivery
// switch, forwarded mail is submitted after each recipient, and the reply carries one
// RecipientResult per recipient for qmgr, which marks the queue file.
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>

#include "local/forward.h"
#include "local/local.h"
#include "util/mailbox/queued_message.h"
#include "util/base/strings.h"
#include "util/daemon/server.h"
#include "util/ipc/rewrite_client.h"
#include "util/log/log.h"
#include "util/mailbox/user_ids.h"

namespace postern::local {
namespace {

namespace mail = ipc::mail;

class LocalService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        config_ = &ctx.config();
        cfg_ = load_settings(*config_);
        if (!ctx.args().service_name.empty()) cfg_.service = ctx.args().service_name;
        auto layout = queue::Layout::from_config(*config_);
        if (!layout) log::fatal("%s", layout.error().c_str());
        layout_ = *layout;
        for (const auto& spec : cfg_.alias_maps) {
            auto t = table::open_table(spec);
            // An alias table that cannot be opened defers the mail that needs it, as
            // Postfix's surrogate tables do, instead of bouncing or dying.
            if (!t) log::error("%s", t.error().c_str());
            aliases_.push_back(t ? std::move(*t) : nullptr);
        }
        // Between deliveries a root local runs with mail_owner's effective ids.
        if (postern::Status st = mailbox::set_eugid(cfg_.owner_uid, cfg_.owner_gid); !st)
            log::fatal("%s", st.error().c_str());
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto req = mail::DeliveryRequest::from_record(record);
        if (!req) {
            log::warn("malformed delivery request: %s", req.error().c_str());
            conn.close_after_write();
            return {};
        }
        mail::DeliveryReply reply = deliver(*req);
        for (const auto& t : aliases_)
            if (t && t->changed()) {
                log::info("table %s has changed -- restarting", t->spec().c_str());
                conn.context().request_exit();
                break;
            }
        return reply.to_record();
    }

private:
    mail::DeliveryReply deliver(const mail::DeliveryRequest& req) {
        mail::DeliveryReply reply;
        auto message = QueuedMessage::open(layout_, req.queue_name, req.queue_id);
        if (!message) {
            log::warn("%s: %s", req.queue_id.c_str(), message.error().c_str());
            reply.status = 1;
            return reply;
        }
        Forwarder forwarder;
        RequestContext ctx{cfg_, req, *message, forwarder, nullptr, nullptr, {}, {}, {}, false};
        ctx.aliases = &aliases_;
        ctx.rewrite = rewrite_client();
        gettimeofday(&ctx.handoff, nullptr);
        for (size_t i = 0; i < req.recipients.size(); ++i) {
            const mail::DeliveryRecipient& r = req.recipients[i];
            ctx.verdict = mail::RecipientResult{};
            ctx.verdict.index = static_cast<long>(i);
            ctx.verdict_set = false;
            MessageAttr attr;
            attr.recipient = r.address;
            attr.orig_rcpt = r.orig.empty() ? r.address : r.orig;
            attr.dsn_orcpt = r.dsn_orcpt;
            attr.notify = r.notify;
            attr.sender = req.sender;
            deliver_recipient(ctx, attr, UserAttr{});
            forwarder.finish(ctx);
            if (!ctx.verdict_set) {  // only duplicates of what this request already did
                ctx.verdict.status = "2.0.0", ctx.verdict.action = "delivered";
                ctx.verdict.reason = "duplicate recipient", ctx.verdict.relay = cfg_.service;
            }
            reply.results.push_back(ctx.verdict);
        }
        return reply;
    }

    // trivial-rewrite decides which addresses are local when it runs; without it
    // (a minimal instance) mydestination does.
    mail::RewriteClient* rewrite_client() {
        struct stat st {};
        std::string socket = cfg_.queue_directory + "/" + std::string(mail::kRewriteSocket);
        if (::stat(socket.c_str(), &st) < 0) return nullptr;
        if (!rewrite_) rewrite_ = std::make_unique<mail::RewriteClient>(cfg_.queue_directory, cfg_.ipc_timeout);
        return rewrite_.get();
    }

    config::Config* config_ = nullptr;
    Settings cfg_;
    queue::Layout layout_;
    std::vector<std::unique_ptr<table::Table>> aliases_;
    std::unique_ptr<mail::RewriteClient> rewrite_;
};

}  // namespace
}  // namespace postern::local

int main(int argc, char** argv) {
    using namespace postern;
    local::LocalService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    return daemon::run_single_server(argc, argv, hooks);
}
