#include "local/forward.h"

#include "util/mailbox/queued_message.h"
#include "util/base/strings.h"
#include "util/ipc/cleanup_client.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"

namespace postern::local {

namespace {

class StringSink : public mailbox::Sink {
public:
    explicit StringSink(std::string& out) : out_(out) {}
    bool write(std::string_view data) override {
        out_.append(data);
        return true;
    }

private:
    std::string& out_;
};

}  // namespace

DelStat deliver_indirect(RequestContext& ctx, const MessageAttr& attr) {
    if (ctx.request.flags & ipc::mail::kDeliveryFlagVerify)
        return sent(ctx, attr, "forwards to " + attr.recipient);
    if (ctx.been_here("indirect " + attr.recipient)) return DelStat::Sent;
    ctx.forwarder.append(attr);
    return DelStat::Sent;
}

void Forwarder::append(const MessageAttr& attr) {
    batches_[{attr.sender, attr.delivered}].push_back(attr);
}

DelStat Forwarder::finish(RequestContext& ctx) {
    DelStat worst = DelStat::Sent;
    for (auto& [key, rcpts] : batches_) {
        ipc::mail::CleanupEnvelope env;
        env.sender = key.first;
        env.envid = ctx.request.envid;
        env.ret = ctx.request.ret;
        env.attributes.emplace_back(std::string(queue::attr::kLogIdent), ctx.request.queue_id);
        env.attributes.emplace_back(std::string(queue::attr::kRewriteContext), "local");
        if (!ctx.request.encoding.empty())
            env.attributes.emplace_back(std::string(queue::attr::kEncoding), ctx.request.encoding);
        for (const auto& a : rcpts) {
            ipc::mail::CleanupRecipient r;
            r.address = a.recipient;
            r.orig = ctx.cfg.enable_original_recipient ? a.orig_rcpt : "";
            r.dsn_orcpt = a.dsn_orcpt;
            r.notify = a.notify;
            env.recipients.push_back(std::move(r));
        }
        mailbox::CopyAttr copy;
        copy.flags = (ctx.cfg.delivered_header & kHdrForward) ? unsigned{mailbox::kCopyDelivered} : 0u;
        copy.delivered = key.second;
        std::string message;
        StringSink sink(message);
        mailbox::Outcome copied = mailbox::copy_message(copy, ctx.message.lines(), sink, "4.3.0");
        std::string new_id, failure;
        if (copied) {
            failure = copied->reason;
        } else {
            auto result = ipc::mail::submit_message(ctx.cfg.queue_directory, ctx.cfg.ipc_timeout,
                                                    ipc::mail::kCleanupBounce | ipc::mail::kCleanupMapOk,
                                                    env, message);
            if (!result) failure = result.error();
            else if (result->status != ipc::mail::kCleanupOk) failure = result->reason;
            else new_id = result->queue_id;
        }
        if (!failure.empty())
            log::warn("%s: forward to cleanup failed: %s", ctx.request.queue_id.c_str(), failure.c_str());
        for (const auto& a : rcpts) {
            DelStat st = DelStat::Deferred;
            if (failure.empty())
                st = record_result(ctx, a, DelStat::Sent, "2.0.0", "forwarded as " + new_id, "relayed");
            else
                defer(ctx, a, "4.3.0", "mail forwarding transaction failed");
            if (st == DelStat::Deferred) worst = st;
        }
    }
    batches_.clear();
    return worst;
}

}  // namespace postern::local
