// anvil(8): connection count and request rate control for servers such as smtpd, as
// Postfix's anvil. Requests and replies are the records of util/ipc/anvil_proto.h; the
// counting lives in util/anvil/anvil_table.h. Peak values are logged every
// anvil_status_update_time and at exit, in Postfix's words
// ("statistics: max connection rate 3/60s for (smtpd:10.0.0.1) at Nov 23 11:29:48").
#include <ctime>
#include <memory>

#include "util/anvil/anvil_table.h"
#include "util/daemon/server.h"
#include "util/ipc/anvil_proto.h"
#include "util/log/log.h"

namespace postern::anvil {
namespace {

namespace proto = ipc::anvil;

class AnvilService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        long unit = ctx.config().get_time("anvil_rate_time_unit");
        long stat_time = ctx.config().get_time("anvil_status_update_time");
        table_ = std::make_unique<AnvilTable>(unit, [] { return static_cast<long>(time(nullptr)); });
        ctx.add_timer(stat_time, true, [this] { log_statistics(); });
        // Idle entries expire one time unit after their last connection went away.
        ctx.add_timer(unit < 10 ? unit : 10, true, [this] { table_->expire(); });
        // Counts live in this process: serve every client and do not leave before a
        // sampling interval ends.
        ctx.max_use = 0;
        if (ctx.max_idle < unit) ctx.max_idle = unit;
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        auto name = record.find("request");
        auto parsed = proto::AnvilRequest::from_record(record);
        proto::AnvilReply reply;
        if (!parsed) {
            if (name && !proto::request_from_name(*name) && record.find("ident")) {
                log::warn("unrecognized request: \"%s\", ignored", std::string(*name).c_str());
                reply.status = proto::kStatusFail;
                return reply.to_record(proto::Request::Lookup);
            }
            log::warn("malformed request: %s", parsed.error().c_str());
            conn.close_after_write();
            return {};
        }
        reply = answer(*parsed, conn.id());
        return reply.to_record(parsed->request);
    }

    void drop_client(daemon::Connection& conn) {
        if (table_) table_->drop_local(conn.id());
    }

    void log_statistics() {
        if (!table_) return;
        for (const std::string& line : table_->take_statistics()) log::info("%s", line.c_str());
    }

private:
    proto::AnvilReply answer(const proto::AnvilRequest& req, uint64_t local) {
        using proto::Request;
        proto::AnvilReply r;
        const std::string& id = req.ident;
        switch (req.request) {
            case Request::Connect: {
                Counts c = table_->connect(id, local);
                r.count = c.count;
                r.rate = c.rate;
                break;
            }
            case Request::Disconnect: table_->disconnect(id, local); break;
            case Request::Message: r.rate = table_->message(id, local); break;
            case Request::Recipient: r.rate = table_->recipient(id, local); break;
            case Request::NewTls: r.rate = table_->newtls(id, local); break;
            case Request::NewTlsReport: r.rate = table_->newtls_report(id); break;
            case Request::Auth: r.rate = table_->auth(id, local); break;
            case Request::Lookup: {
                Counts c = table_->lookup(id);
                r.count = c.count, r.rate = c.rate, r.mail = c.mail;
                r.rcpt = c.rcpt, r.newtls = c.ntls, r.auth = c.auth;
                break;
            }
        }
        return r;
    }

    std::unique_ptr<AnvilTable> table_;
};

}  // namespace
}  // namespace postern::anvil

int main(int argc, char** argv) {
    using namespace postern;
    anvil::AnvilService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    hooks.on_disconnect = [&](daemon::Connection& c) { service.drop_client(c); };
    hooks.on_exit = [&](daemon::ServerContext&) { service.log_statistics(); };
    hooks.max_input = 64 * 1024;  // requests are two short attributes
    return daemon::run_multi_server(argc, argv, hooks);
}
