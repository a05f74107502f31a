#include "util/log/mail_events.h"

#include <algorithm>

#include "util/base/strings.h"

namespace postern::log {
namespace {

constexpr long kMillion = 1000000;
constexpr long kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

bool stamped(const timeval& t) { return t.tv_sec > 0; }

// later - earlier, normalized; a clock that went backwards gives zero, not a
// negative delay.
timeval delta(const timeval& later, const timeval& earlier) {
    long sec = later.tv_sec - earlier.tv_sec;
    long usec = later.tv_usec - earlier.tv_usec;
    while (usec < 0) {
        usec += kMillion;
        sec -= 1;
    }
    while (usec >= kMillion) {
        usec -= kMillion;
        sec += 1;
    }
    if (sec < 0) sec = usec = 0;
    timeval out{};
    out.tv_sec = sec;
    out.tv_usec = usec;
    return out;
}

std::string tv_text(const timeval& t, int max_digits) {
    return format_delay(t.tv_sec, t.tv_usec, 2, max_digits);
}

}  // namespace

std::string format_delay(long sec, long usec, int sig_digits, int max_digits) {
    sig_digits = std::clamp(sig_digits, 1, 6);
    max_digits = std::clamp(max_digits, 0, 6);
    if (sec < 0 || usec < 0) sec = usec = 0;
    sec += usec / kMillion;
    usec %= kMillion;

    // The resolution (in microseconds) of the last digit printed: never finer than
    // max_digits allows, and coarse enough that only sig_digits digits are significant.
    long floor_res = kMillion / kPow10[max_digits];
    long res = floor_res;
    long width = kPow10[sig_digits];
    if (res < kMillion) {
        if (sec > 0) {
            long n = 1;
            while (sec >= n && n <= width / 10) n *= 10;
            res = std::max(floor_res, (kMillion / width) * n);
        } else {
            while (usec >= width * res) res *= 10;
        }
    }
    // Round half up at that resolution.
    if (res > 1) {
        usec += res / 2;
        if (usec >= kMillion) {
            sec += 1;
            usec -= kMillion;
        }
    }
    std::string out = std::to_string(sec);
    if (usec >= res) {
        out += '.';
        long rem = usec;
        for (long n = kMillion / 10; rem >= res && n > 0; n /= 10) {
            out += static_cast<char>('0' + rem / n);
            rem %= n;
        }
    }
    return out;
}

std::string client_namaddr(std::string_view name, std::string_view addr, std::string_view port,
                           bool port_logging) {
    std::string out;
    out.append(name).append("[").append(addr).append("]");
    if (port_logging && !port.empty()) out.append(":").append(port);
    return out;
}

std::string client_line(const ClientEvent& e) {
    std::string out(e.queue_id.empty() ? std::string_view("NOQUEUE") : e.queue_id);
    out.append(": client=").append(e.namaddr);
    if (!e.sasl_method.empty() || !e.sasl_username.empty()) {
        out.append(", sasl_method=").append(e.sasl_method);
        out.append(", sasl_username=").append(e.sasl_username);
    }
    if (!e.sasl_sender.empty()) out.append(", sasl_sender=").append(e.sasl_sender);
    return out;
}

std::string message_id_line(std::string_view queue_id, std::string_view message_id,
                            bool resent) {
    std::string out(queue_id);
    out.append(resent ? ": resent-message-id=" : ": message-id=");
    out.append(message_id.empty() ? std::string_view("<>") : message_id);
    return out;
}

std::string from_line(std::string_view queue_id, std::string_view sender, long size, int nrcpt,
                      std::string_view queue_name) {
    std::string out = strprintf("%.*s: from=<%.*s>, size=%ld, nrcpt=%d",
                                static_cast<int>(queue_id.size()), queue_id.data(),
                                static_cast<int>(sender.size()), sender.data(), size, nrcpt);
    if (!queue_name.empty()) out.append(" (queue ").append(queue_name).append(")");
    return out;
}

Delays compute_delays(const DeliveryTimes& t, timeval now) {
    if (stamped(t.deliver_done)) now = t.deliver_done;
    Delays d;
    d.delay = delta(now, t.incoming_arrival);
    if (!stamped(t.active_arrival)) {
        d.before_qmgr = delta(now, t.incoming_arrival);  // never reached the queue manager
        return d;
    }
    d.before_qmgr = delta(t.active_arrival, t.incoming_arrival);
    if (!stamped(t.agent_handoff)) {
        d.in_qmgr = delta(now, t.active_arrival);  // deferred or bounced by qmgr itself
        return d;
    }
    d.in_qmgr = delta(t.agent_handoff, t.active_arrival);
    if (stamped(t.conn_setup_done)) {
        d.conn_setup = delta(t.conn_setup_done, t.agent_handoff);
        d.transmission = delta(now, t.conn_setup_done);
    } else {
        d.transmission = delta(now, t.agent_handoff);  // no network connection
    }
    return d;
}

std::string delivery_line(const DeliveryEvent& e, timeval now) {
    std::string out(e.queue_id);
    out.append(": to=<").append(e.recipient).append(">");
    if (!e.orig_recipient.empty() && !iequals(e.orig_recipient, e.recipient))
        out.append(", orig_to=<").append(e.orig_recipient).append(">");
    out.append(", relay=").append(e.relay);
    if (e.times.reuse_count > 0) out.append(strprintf(", conn_use=%d", e.times.reuse_count + 1));
    Delays d = compute_delays(e.times, now);
    int res = e.delay_max_digits;
    out.append(", delay=").append(tv_text(d.delay, res));
    out.append(", delays=").append(tv_text(d.before_qmgr, res));
    out.append("/").append(tv_text(d.in_qmgr, res));
    out.append("/").append(tv_text(d.conn_setup, res));
    out.append("/").append(tv_text(d.transmission, res));
    out.append(", dsn=").append(e.dsn);
    out.append(", status=").append(e.status);
    out.append(" (").append(e.reason).append(")");
    return out;
}

std::string removed_line(std::string_view queue_id) {
    return std::string(queue_id) + ": removed";
}

}  // namespace postern::log
