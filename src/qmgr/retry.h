// qmgr's clock arithmetic, kept free of I/O so the unit tests pin it down: when a
// deferred message is tried again, when it has been queued too long, when its sender is
// owed a delay warning. The rules are Postfix's (qmgr_active.c).
#pragma once

#include <algorithm>
#include <string_view>

namespace postern::qmgr {

struct RetryPolicy {
    long minimal_backoff = 300;     // minimal_backoff_time
    long maximal_backoff = 4000;    // maximal_backoff_time
    long queue_lifetime = 432000;   // maximal_queue_lifetime
    long bounce_lifetime = 432000;  // bounce_queue_lifetime (null sender)
};

// Seconds until the next attempt: the time the message has spent in the queue, kept
// between the two backoff limits. Looking at the age (not at the previous delay) spreads
// retries of mail that arrived at different times, as Postfix does. An unknown arrival
// time (0) gets the minimal backoff.
inline long backoff_delay(const RetryPolicy& p, long arrival, long now) {
    if (arrival <= 0) return p.minimal_backoff;
    long age = now - arrival;
    return std::max(p.minimal_backoff, std::min(age, p.maximal_backoff));
}

// The lifetime that applies to a message: bounces (null sender) give up sooner.
inline long queue_lifetime(const RetryPolicy& p, std::string_view sender) {
    return sender.empty() ? p.bounce_lifetime : p.queue_lifetime;
}

// True when a message that still has deferred recipients must be returned to its sender.
// A lifetime of 0 means one delivery attempt only.
inline bool is_expired(const RetryPolicy& p, std::string_view sender, long arrival, long now) {
    return now >= arrival + queue_lifetime(p, sender);
}

// True when the W record's time has come (0 or absent: no warning is due, or it was sent).
inline bool warning_due(long warn_time, long now) { return warn_time > 0 && now >= warn_time; }

// A deferred file is eligible when its mtime (the next-retry time) has come, or always
// when the scan ignores the times (postqueue -f, sendmail -q).
inline bool retry_time_reached(long mtime, long now, bool ignore_time) {
    return ignore_time || mtime <= now;
}

}  // namespace postern::qmgr
