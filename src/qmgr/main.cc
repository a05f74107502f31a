// qmgr(8): the queue manager. Runs as master.cf's "qmgr unix n - n 300 1 qmgr": one
// process, woken by trigger bytes on public/qmgr, with its own timers for the deferred
// queue; it never exits for being idle.
#include <memory>

#include "qmgr/qmgr.h"
#include "util/daemon/server.h"
#include "util/log/log.h"

using namespace postern;

namespace {
std::unique_ptr<qmgr::Qmgr> the_qmgr;
// How long a stopping qmgr waits for the answers of deliveries already handed out.
constexpr long kDrainSeconds = 5;
}  // namespace

int main(int argc, char** argv) {
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [](daemon::ServerContext& ctx) {
        // Postfix's qmgr is a long-running solitary process: no idle exit, no use limit.
        ctx.max_idle = 0;
        ctx.max_use = 0;
        auto layout = queue::Layout::from_config(ctx.config());
        if (!layout) log::fatal("%s", layout.error().c_str());
        the_qmgr = std::make_unique<qmgr::Qmgr>(ctx, qmgr::Settings::from(ctx.config()), std::move(*layout));
        the_qmgr->start();
    };
    hooks.on_trigger = [](daemon::ServerContext&, std::string_view bytes) { the_qmgr->on_trigger(bytes); };
    hooks.on_pre_accept = [](daemon::ServerContext&) { the_qmgr->on_loop(); };
    hooks.on_exit = [](daemon::ServerContext&) {
        if (the_qmgr) the_qmgr->drain(kDrainSeconds);
        the_qmgr.reset();
    };
    hooks.max_input = 1024;
    return daemon::run_trigger_server(argc, argv, hooks);
}
