// smtp(8) and lmtp(8): the SMTP/LMTP delivery agent. One binary; run as "lmtp" (the
// program name master starts) it speaks LMTP and reads the lmtp_* parameters, as
// Postfix's smtp does. A single-client daemon: qmgr sends one DeliveryRequest at a time
// and the request is carried out on the event loop (DNS through the asynchronous
// resolver, the conversation through a Session), the reply written when it is done.
#include <event2/event.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "smtp/delivery.h"
#include "smtp/settings.h"
#include "util/daemon/server.h"
#include "util/dns/resolver.h"
#include "util/ipc/attr.h"
#include "util/log/log.h"
#include "util/queue/queue_layout.h"

namespace postern::smtp {
namespace {

namespace mail = ipc::mail;

class SmtpService {
public:
    explicit SmtpService(bool lmtp) : lmtp_(lmtp), rng_(std::random_device{}()) {}

    void post_jail_init(daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        settings_ = load_settings(ctx.config(), lmtp_);
        auto layout = queue::Layout::from_config(ctx.config());
        if (!layout) log::fatal("%s", layout.error().c_str());
        layout_ = *layout;
        auto resolver = dns::Resolver::create(ctx.base());
        if (!resolver) log::fatal("cannot set up the DNS resolver: %s", resolver.error().c_str());
        resolver_ = std::move(*resolver);
        base_ = ctx.base();
        cache_ = std::make_unique<ConnectionCache>(base_);
    }

    void on_connection(daemon::Connection& conn) { clients_.try_emplace(conn.id()); }

    void on_disconnect(daemon::Connection& conn) { clients_.erase(conn.id()); }

    void on_data(daemon::Connection& conn) {
        auto it = clients_.find(conn.id());
        if (it == clients_.end()) return;
        Client& client = it->second;
        if (Status st = client.decoder.feed(conn.input()); !st) {
            log::warn("%s: malformed request: %s", lmtp_ ? "lmtp" : "smtp", st.error().c_str());
            conn.consume(conn.input().size());
            conn.close_after_write();
            return;
        }
        conn.consume(conn.input().size());
        serve_next(conn, client);
    }

private:
    struct Client {
        ipc::AttrDecoder decoder;
        std::shared_ptr<Delivery> delivery;
    };

    void serve_next(daemon::Connection& conn, Client& client) {
        if (client.delivery) return;
        auto record = client.decoder.next();
        if (!record) return;
        auto req = mail::DeliveryRequest::from_record(*record);
        if (!req) {
            log::warn("malformed delivery request: %s", req.error().c_str());
            conn.close_after_write();
            return;
        }
        conn.pause_input();
        uint64_t id = conn.id();
        client.delivery = std::make_shared<Delivery>(
            base_, *resolver_, settings_, layout_, rng_, *cache_, std::move(*req),
            [this, id, &conn](mail::DeliveryReply reply) { finished(id, conn, std::move(reply)); });
        client.delivery->start();
    }

    // The delivery's last act: reply to qmgr, then take the next request.
    void finished(uint64_t id, daemon::Connection& conn, mail::DeliveryReply reply) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;  // qmgr went away meanwhile
        conn.write(ipc::encode_record(reply.to_record()));
        // Destroyed from the loop: this runs inside the delivery's own call chain.
        auto done = std::move(it->second.delivery);
        retired_.push_back(std::move(done));
        event_base_once(base_, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
            static_cast<SmtpService*>(arg)->retired_.clear();
        }, this, nullptr);
        conn.resume_input();
        serve_next(conn, it->second);
    }

    bool lmtp_;
    std::mt19937 rng_;
    Settings settings_;
    queue::Layout layout_;
    std::unique_ptr<dns::Resolver> resolver_;
    std::unique_ptr<ConnectionCache> cache_;  // after the resolver: freed first
    event_base* base_ = nullptr;
    std::map<uint64_t, Client> clients_;
    std::vector<std::shared_ptr<Delivery>> retired_;
};

bool run_as_lmtp(const char* argv0) {
    std::string_view prog = argv0 ? argv0 : "";
    size_t slash = prog.rfind('/');
    if (slash != std::string_view::npos) prog.remove_prefix(slash + 1);
    return prog == "lmtp";
}

}  // namespace
}  // namespace postern::smtp

int main(int argc, char** argv) {
    using namespace postern;
    smtp::SmtpService service(smtp::run_as_lmtp(argc > 0 ? argv[0] : nullptr));
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_connection = [&](daemon::Connection& conn) { service.on_connection(conn); };
    hooks.on_disconnect = [&](daemon::Connection& conn) { service.on_disconnect(conn); };
    hooks.on_data = [&](daemon::Connection& conn) { service.on_data(conn); };
    return daemon::run_single_server(argc, argv, hooks);
}
