#include "qmgr/qmgr.h"

#include <event2/event.h>

#include "util/log/log.h"

namespace postern::qmgr {

namespace mail = ipc::mail;

namespace {
// How often idle agent connections are looked at (closed after max_idle unused).
constexpr long kHousekeepingSeconds = 5;
}  // namespace

Qmgr::Qmgr(daemon::ServerContext& ctx, Settings settings, queue::Layout layout)
    : ctx_(ctx),
      settings_(std::move(settings)),
      layout_(std::move(layout)),
      rewrite_(settings_.queue_directory, settings_.ipc_timeout),
      bounce_(std::string(mail::kBounceSocket), settings_.ipc_timeout) {
    scan_event_ = event_new(ctx_.base(), -1, 0,
                            [](evutil_socket_t, short, void* arg) { static_cast<Qmgr*>(arg)->run_scans(); },
                            this);
    feed_event_ = event_new(ctx_.base(), -1, 0,
                            [](evutil_socket_t, short, void* arg) { static_cast<Qmgr*>(arg)->feed(); }, this);
    housekeeping_event_ = event_new(ctx_.base(), -1, EV_PERSIST,
                                    [](evutil_socket_t, short, void* arg) { static_cast<Qmgr*>(arg)->sweep_idle(); },
                                    this);
    timeval tv{kHousekeepingSeconds, 0};
    event_add(housekeeping_event_, &tv);
    if (auto remover = daemon::WorkerThread::create(ctx_.base()))
        remover_ = std::move(*remover);
    else
        log::warn("%s: removing queue files on the main loop", remover.error().c_str());
}

Qmgr::~Qmgr() {
    // A finished message whose file stayed in active/ would be delivered again next start.
    if (remover_) remover_->drain();
    event_free(scan_event_);
    event_free(feed_event_);
    event_free(housekeeping_event_);
}

void Qmgr::start() {
    recover_active();
    request_scan(true, true, false);
    // The deferred queue is looked at every queue_run_delay; new mail comes by trigger.
    ctx_.add_timer(settings_.queue_run_delay, true, [this] { request_scan(false, true, false); });
}

// Postfix's trigger bytes; several may come in one request ("FA" from postqueue -f).
void Qmgr::on_trigger(std::string_view bytes) {
    for (char c : bytes) {
        switch (c) {
            case mail::kTriggerWakeup:
            case mail::kTriggerScanIncoming:
                request_scan(true, false, false);
                break;
            case mail::kTriggerScanDeferred:
                request_scan(false, true, false);
                break;
            case mail::kTriggerScanAll:
                request_scan(true, true, true);
                break;
            case mail::kTriggerFlushDead:
                for (auto& [name, ts] : transports_) ts->dead_until = 0;
                break;
            default:
                log::warn("ignoring unknown trigger request %#o", static_cast<unsigned char>(c));
                break;
        }
    }
}

// Scans run from the loop, once for any number of triggers that came meanwhile.
void Qmgr::request_scan(bool incoming, bool deferred, bool ignore_time) {
    if (stopping_) return;
    scan_incoming_ |= incoming;
    scan_deferred_ |= deferred;
    ignore_time_ |= ignore_time;
    event_active(scan_event_, EV_TIMEOUT, 0);
}

void Qmgr::drain(long seconds) {
    stopping_ = true;
    auto running = [this] {
        size_t n = 0;
        for (auto& [name, ts] : transports_) n += ts->busy.size();
        return n;
    };
    time_t end = time(nullptr) + seconds;
    while (running() > 0 && time(nullptr) < end) {
        timeval tv{1, 0};
        event_base_loopexit(ctx_.base(), &tv);
        event_base_loop(ctx_.base(), EVLOOP_ONCE);
        retired_.clear();
    }
}

void Qmgr::sweep_idle() {
    time_t now = time(nullptr);
    for (auto& [name, ts] : transports_) {
        auto& idle = ts->idle;
        for (auto it = idle.begin(); it != idle.end();) {
            if ((*it)->closed() || now - (*it)->idle_since() >= settings_.agent_idle_time) {
                retired_.push_back(std::move(*it));
                it = idle.erase(it);
            } else {
                ++it;
            }
        }
    }
}

}  // namespace postern::qmgr
