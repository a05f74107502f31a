#include "util/anvil/anvil_table.h"

#include <climits>
#include <ctime>

#include "util/base/strings.h"

namespace postern::anvil {

std::string log_time(long when) {
    time_t t = static_cast<time_t>(when);
    struct tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tm);
    return buf;
}

AnvilTable::AnvilTable(long time_unit, Clock clock) : unit_(time_unit), clock_(std::move(clock)) {}

void AnvilTable::peak(Peak& p, int value, const std::string& ident) {
    if (value <= p.value) return;
    p.value = value;
    p.ident = ident;
    p.when = clock_();
}

void AnvilTable::refresh(Remote& r) {
    // Stale rates are not reported: a window that ended reads as zero.
    if (r.start != 0 && r.start + unit_ < clock_()) {
        r.c.rate = r.c.mail = r.c.rcpt = r.c.ntls = r.c.auth = 0;
        r.start = 0;
    }
}

void AnvilTable::increment(Remote& r, int Counts::*field) {
    long now = clock_();
    if (r.start + unit_ < now) {
        r.c.rate = r.c.mail = r.c.rcpt = r.c.ntls = r.c.auth = 0;
        r.start = now;
    }
    if (r.c.*field < INT_MAX) ++(r.c.*field);
}

void AnvilTable::drop_one(Remote& r) {
    if (r.c.count > 0 && --r.c.count == 0) r.idle_since = clock_();
}

AnvilTable::Remote& AnvilTable::conn_update(const std::string& ident, uint64_t local) {
    auto it = remotes_.find(ident);
    if (it == remotes_.end()) {
        Remote r;
        r.c.count = 1;
        r.c.rate = 1;
        r.start = clock_();
        it = remotes_.emplace(ident, r).first;
        if (static_cast<int>(remotes_.size()) > max_cache_size_) {
            max_cache_size_ = static_cast<int>(remotes_.size());
            max_cache_time_ = clock_();
        }
    } else {
        increment(it->second, &Counts::rate);
        ++it->second.c.count;
    }
    // One remote per local, as Postfix: a new connect replaces the previous one.
    auto loc = locals_.find(local);
    if (loc != locals_.end()) {
        auto prev = remotes_.find(loc->second);
        if (prev != remotes_.end()) drop_one(prev->second);
    }
    locals_[local] = ident;
    return it->second;
}

Counts AnvilTable::connect(const std::string& ident, uint64_t local) {
    Remote& r = conn_update(ident, local);
    peak(max_conn_rate_, r.c.rate, ident);
    peak(max_conn_count_, r.c.count, ident);
    return r.c;
}

void AnvilTable::disconnect(const std::string& ident, uint64_t local) {
    auto loc = locals_.find(local);
    auto it = remotes_.find(ident);
    if (loc == locals_.end() || it == remotes_.end() || loc->second != ident) return;
    drop_one(it->second);
    locals_.erase(loc);
}

AnvilTable::Remote& AnvilTable::find_or_connect(const std::string& ident, uint64_t local) {
    // Be prepared for a reload of anvil between "connect" and the next request.
    auto it = remotes_.find(ident);
    return it != remotes_.end() ? it->second : conn_update(ident, local);
}

int AnvilTable::message(const std::string& ident, uint64_t local) {
    Remote& r = find_or_connect(ident, local);
    increment(r, &Counts::mail);
    peak(max_mail_rate_, r.c.mail, ident);
    return r.c.mail;
}

int AnvilTable::recipient(const std::string& ident, uint64_t local) {
    Remote& r = find_or_connect(ident, local);
    increment(r, &Counts::rcpt);
    peak(max_rcpt_rate_, r.c.rcpt, ident);
    return r.c.rcpt;
}

int AnvilTable::newtls(const std::string& ident, uint64_t local) {
    Remote& r = find_or_connect(ident, local);
    increment(r, &Counts::ntls);
    peak(max_ntls_rate_, r.c.ntls, ident);
    return r.c.ntls;
}

int AnvilTable::auth(const std::string& ident, uint64_t local) {
    Remote& r = find_or_connect(ident, local);
    increment(r, &Counts::auth);
    peak(max_auth_rate_, r.c.auth, ident);
    return r.c.auth;
}

int AnvilTable::newtls_report(const std::string& ident) {
    auto it = remotes_.find(ident);
    if (it == remotes_.end()) return 0;
    refresh(it->second);
    return it->second.c.ntls;
}

Counts AnvilTable::lookup(const std::string& ident) {
    auto it = remotes_.find(ident);
    if (it == remotes_.end()) return {};
    refresh(it->second);
    return it->second.c;
}

void AnvilTable::drop_local(uint64_t local) {
    auto loc = locals_.find(local);
    if (loc == locals_.end()) return;
    auto it = remotes_.find(loc->second);
    if (it != remotes_.end()) drop_one(it->second);
    locals_.erase(loc);
}

void AnvilTable::expire() {
    long now = clock_();
    for (auto it = remotes_.begin(); it != remotes_.end();) {
        const Remote& r = it->second;
        if (r.c.count == 0 && r.idle_since + unit_ <= now)
            it = remotes_.erase(it);
        else
            ++it;
    }
}

std::vector<std::string> AnvilTable::take_statistics() {
    std::vector<std::string> out;
    auto rate = [&](Peak& p, const char* name) {
        if (p.value <= 0) return;
        out.push_back(strprintf("statistics: max %s rate %d/%lds for (%s) at %s", name, p.value, unit_,
                                p.ident.c_str(), log_time(p.when).c_str()));
        p.value = 0;
    };
    rate(max_conn_rate_, "connection");
    if (max_conn_count_.value > 0) {
        out.push_back(strprintf("statistics: max connection count %d for (%s) at %s", max_conn_count_.value,
                                max_conn_count_.ident.c_str(), log_time(max_conn_count_.when).c_str()));
        max_conn_count_.value = 0;
    }
    rate(max_mail_rate_, "message");
    rate(max_rcpt_rate_, "recipient");
    rate(max_ntls_rate_, "newtls");
    rate(max_auth_rate_, "AUTH");
    if (max_cache_size_ > 0) {
        out.push_back(strprintf("statistics: max cache size %d at %s", max_cache_size_,
                                log_time(max_cache_time_).c_str()));
        max_cache_size_ = 0;
    }
    return out;
}

}  // namespace postern::anvil
