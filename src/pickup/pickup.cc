// pickup(8) main: a trigger server. Every wake-up (postdrop's trigger, master's wakeup
// timer) scans maildrop/ until a scan removes nothing.
#include <pwd.h>
#include <unistd.h>

#include "pickup/pickup.h"
#include "util/base/strings.h"
#include "util/daemon/server.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::pickup {
namespace {

struct State {
    Settings settings;
    queue::Layout layout;
    bool ready = false;
};

State& state() {
    static State s;
    return s;
}

void scan_maildrop() {
    State& st = state();
    if (!st.ready) return;
    for (;;) {
        auto ids = st.layout.list(queue::kMaildrop);
        if (!ids) {
            log::warn("scan %s: %s", std::string(queue::kMaildrop).c_str(), ids.error().c_str());
            return;
        }
        int removed = 0;
        for (const std::string& id : *ids) {
            Outcome out = pickup_file(st.settings, st.layout, id);
            if (out == Outcome::CleanupDown) return;  // the next wake-up tries again
            if (out == Outcome::Removed || out == Outcome::Quarantined) ++removed;
        }
        if (removed == 0) return;
    }
}

// receive_override_options: what pickup's mail may skip in cleanup.
long cleanup_flags(const config::Config& cfg) {
    using namespace ipc::mail;
    long flags = kCleanupDefault | kCleanupLocalSubmit | kCleanupBounce;
    for (const std::string& opt : cfg.get_list("receive_override_options")) {
        if (opt == "no_address_mappings") flags &= ~kCleanupMapOk;
        else if (opt == "no_header_body_checks") flags &= ~kCleanupFilter;
        else if (opt != "no_unknown_recipient_checks" && opt != "no_milters")
            log::warn("unknown receive_override_options value: %s", opt.c_str());
    }
    return flags;
}

void post_jail_init(daemon::ServerContext& ctx) {
    State& st = state();
    st.settings = settings_from(ctx.config());
    auto layout = queue::Layout::from_config(ctx.config());
    if (!layout) log::fatal("%s", layout.error().c_str());
    st.layout = std::move(*layout);
    st.ready = true;
    // Files left while pickup was down wait for master's wakeup timer, as with Postfix.
}

}  // namespace

Settings settings_from(const config::Config& cfg) {
    Settings s;
    s.queue_directory = cfg.get("queue_directory");
    s.cleanup_flags = cleanup_flags(cfg);
    s.ipc_timeout = cfg.get_time("ipc_timeout");
    if (struct passwd* pw = getpwnam(cfg.get("mail_owner").c_str())) s.mail_owner = pw->pw_uid;
    return s;
}

}  // namespace postern::pickup

int main(int argc, char** argv) {
    using namespace postern;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = pickup::post_jail_init;
    hooks.on_trigger = [](daemon::ServerContext&, std::string_view) { pickup::scan_maildrop(); };
    return daemon::run_trigger_server(argc, argv, hooks);
}
