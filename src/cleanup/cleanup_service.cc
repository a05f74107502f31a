#include "cleanup_service.h"

#include "util/ipc/rewrite_client.h"
#include "util/queue/delivery_log.h"
#include "util/log/log.h"

namespace postern::cleanup {

namespace proto = ipc::mail;

void CleanupService::post_jail_init(daemon::ServerContext& ctx) {
    if (!ctx.args().args.empty())
        log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
    settings_ = Settings::load(ctx.config());
    auto layout = queue::Layout::from_config(ctx.config());
    if (!layout) log::fatal("%s", layout.error().c_str());
    layout_ = std::move(*layout);
    auto client = std::make_unique<proto::RewriteClient>(layout_.queue_directory(), settings_->ipc_timeout);
    rewriter_ = std::make_unique<AddressRewriter>(*settings_, std::move(client));
    commit_ = std::make_unique<GroupCommit>(ctx.base(), layout_,
                                            [this](uint64_t c, const proto::CleanupResult& r) { reply(c, r); });
}

ipc::AttrRecord CleanupService::serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
    Session& s = sessions_[conn.id()];
    s.conn = &conn;
    std::string_view request = proto::request_of(record);
    if (s.waiting) return protocol_error(s, "request while the result is pending");
    if (request == "open") return open(s, record);
    if (!s.message) return protocol_error(s, "no open message");
    if (request == "envelope") {
        if (s.message->has_envelope()) return protocol_error(s, "second envelope");
        auto env = proto::CleanupEnvelope::from_record(record);
        if (!env) return protocol_error(s, env.error().c_str());
        s.message->envelope(*env);
        return {};
    }
    if (!s.message->has_envelope()) return protocol_error(s, "content before the envelope");
    if (request == "content") {
        auto content = proto::CleanupContent::from_record(record);
        if (!content) return protocol_error(s, content.error().c_str());
        s.message->content(content->data);
        return {};
    }
    if (request == "end") {
        auto e = proto::CleanupEnd::from_record(record);
        if (!e) return protocol_error(s, e.error().c_str());
        s.message->late_flags(e->late_flags);
        return end(s, conn.id());
    }
    return protocol_error(s, "unknown request");
}

ipc::AttrRecord CleanupService::open(Session& s, const ipc::AttrRecord& record) {
    if (s.message) return protocol_error(s, "open while a message is open");
    auto req = proto::CleanupOpen::from_record(record);
    if (!req) return protocol_error(s, req.error().c_str());
    proto::CleanupOpened opened;
    auto file = queue::QueueFileWriter::create(layout_, queue::kIncoming);
    if (!file) {
        log::warn("create queue file: %s", file.error().c_str());
        opened.status = proto::kCleanupStatWrite;
        return opened.to_record();
    }
    opened.queue_id = file->id();
    s.message = std::make_unique<CleanupMessage>(*settings_, *rewriter_, req->flags, std::move(*file));
    return opened.to_record();
}

ipc::AttrRecord CleanupService::end(Session& s, uint64_t client) {
    CleanupMessage& m = *s.message;
    m.finish();
    if (m.bounce_instead()) {
        Status logged = queue::append_delivery_log(layout_, queue::kBounce, m.queue_id(), m.bounce_entries(), true);
        if (logged) {
            m.log_bounces();
        } else {
            log::warn("%s: %s", m.queue_id().c_str(), logged.error().c_str());
            (void)queue::remove_delivery_log(layout_, queue::kBounce, m.queue_id());
            m.fail_write();
        }
    }
    if (m.status() == 0 && !m.discarded()) {
        s.waiting = true;
        commit_->add(std::move(s.message), client);
        return {};
    }
    proto::CleanupResult result;
    result.queue_id = m.queue_id();
    result.status = m.status();
    result.reason = m.reason();
    Status st = m.file().abandon();
    if (!st) log::warn("%s: %s", m.queue_id().c_str(), st.error().c_str());
    s.message.reset();
    return result.to_record();
}

ipc::AttrRecord CleanupService::protocol_error(Session& s, const char* what) {
    std::string id = s.message ? s.message->queue_id() : std::string("NOQUEUE");
    log::warn("%s: client protocol error: %s; message abandoned", id.c_str(), what);
    if (s.message) (void)s.message->file().abandon();
    s.message.reset();
    if (s.conn) s.conn->close_after_write();
    return {};
}

void CleanupService::reply(uint64_t client, const proto::CleanupResult& result) {
    auto it = sessions_.find(client);
    if (it == sessions_.end() || !it->second.conn) return;  // the client went away: mail is safe anyway
    it->second.waiting = false;
    it->second.conn->write(ipc::encode_record(result.to_record()));
}

void CleanupService::disconnect(daemon::Connection& conn) {
    auto it = sessions_.find(conn.id());
    if (it == sessions_.end()) return;
    if (it->second.message) {
        // A client that goes away before any content (smtpd after RSET, QUIT or a lost
        // connection before DATA) is routine, and Postfix's cleanup says nothing of it.
        if (it->second.message->content_started())
            log::warn("%s: client disconnected before the end of the message", it->second.message->queue_id().c_str());
        (void)it->second.message->file().abandon();
    }
    sessions_.erase(it);
}

void CleanupService::exit() {
    if (commit_) commit_->flush();
}

}  // namespace postern::cleanup
