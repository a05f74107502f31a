// showq(8): lists the mail queue for postqueue run by users who may not read it. Runs
// as mail_owner; for each client it sends one record per listable message
// (queue::ListedMessage), then a closing record, and closes the connection.
#include "util/daemon/server.h"
#include "util/ipc/attr.h"
#include "util/log/log.h"
#include "util/queue/queue_layout.h"
#include "util/queue/queue_listing.h"

namespace postern::showq {
namespace {

struct Service {
    std::optional<queue::Layout> layout;
    queue::ShowSettings settings;
};

void list_queue(Service& svc, daemon::Connection& conn) {
    std::string out;
    Status st = queue::scan_queues(*svc.layout, svc.settings, [&](const queue::ListedMessage& m) {
        ipc::encode_record(m.to_record(), out);
        if (out.size() >= 65536) {
            conn.write(out);
            out.clear();
        }
        return true;
    });
    // Without the closing record postqueue reports an incomplete listing.
    if (st) ipc::encode_record(ipc::AttrRecord().add(queue::kShowqEnd, "1"), out);
    else log::warn("%s", st.error().c_str());
    conn.write(out);
    conn.close_after_write();
}

}  // namespace
}  // namespace postern::showq

int main(int argc, char** argv) {
    using namespace postern;
    showq::Service svc;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&svc](daemon::ServerContext& ctx) {
        auto layout = queue::Layout::from_config(ctx.config());
        if (!layout) log::fatal("%s", layout.error().c_str());
        svc.layout = std::move(*layout);
        svc.settings.empty_address = ctx.config().get("empty_address_recipient");
        svc.settings.duplicate_filter_limit = ctx.config().get_int("duplicate_filter_limit");
        svc.settings.utf8 = ctx.config().get_bool("smtputf8_enable");
        svc.settings.long_ids = svc.layout->long_ids();
    };
    hooks.on_connection = [&svc](daemon::Connection& conn) { showq::list_queue(svc, conn); };
    hooks.on_data = [](daemon::Connection& conn) { conn.consume(conn.input().size()); };
    return daemon::run_multi_server(argc, argv, hooks);
}
