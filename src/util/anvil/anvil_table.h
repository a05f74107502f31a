// anvil(8)'s state: per (service, client) "ident" the number of open connections and the
// connection, message, recipient, new-TLS and AUTH rates over anvil_rate_time_unit, plus
// the peak values it logs every anvil_status_update_time. Rates work as in Postfix: a
// counter is reset when the time unit since its first sample has passed (not a moving
// average), which answers faster to a client that hammers the server.
//
// The clock is injected so tests can step time. A "local" is one anvil client (an smtpd
// process connection); as in Postfix, each local holds at most one remote connection, and
// a local that goes away without "disconnect" drops its connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace postern::anvil {

struct Counts {
    int count = 0;  // simultaneous connections
    int rate = 0;   // connections per time unit
    int mail = 0;
    int rcpt = 0;
    int ntls = 0;
    int auth = 0;
};

class AnvilTable {
public:
    using Clock = std::function<long()>;  // seconds
    AnvilTable(long time_unit, Clock clock);

    Counts connect(const std::string& ident, uint64_t local);
    void disconnect(const std::string& ident, uint64_t local);
    int message(const std::string& ident, uint64_t local);
    int recipient(const std::string& ident, uint64_t local);
    int newtls(const std::string& ident, uint64_t local);
    int auth(const std::string& ident, uint64_t local);
    int newtls_report(const std::string& ident);
    Counts lookup(const std::string& ident);
    // The anvil client `local` went away.
    void drop_local(uint64_t local);
    // Forgets idents with no connection whose last rate window ended (Postfix expires
    // them one time unit after the last disconnect).
    void expire();
    size_t size() const { return remotes_.size(); }

    // Postfix's "statistics: max ..." lines for the peaks since the last call, which
    // resets them.
    std::vector<std::string> take_statistics();

private:
    struct Remote {
        Counts c;
        long start = 0;      // first sample of the current rate window; 0: no window
        long idle_since = 0;  // when count dropped to 0
    };
    struct Peak {
        int value = 0;
        std::string ident;
        long when = 0;
    };

    Remote& conn_update(const std::string& ident, uint64_t local);
    Remote& find_or_connect(const std::string& ident, uint64_t local);
    void increment(Remote& r, int Counts::*field);
    void refresh(Remote& r);
    void drop_one(Remote& r);
    void peak(Peak& p, int value, const std::string& ident);

    long unit_;
    Clock clock_;
    std::map<std::string, Remote, std::less<>> remotes_;
    std::map<uint64_t, std::string> locals_;
    Peak max_conn_rate_, max_conn_count_, max_mail_rate_, max_rcpt_rate_, max_ntls_rate_,
        max_auth_rate_;
    int max_cache_size_ = 0;
    long max_cache_time_ = 0;
};

// "Nov 23 11:29:48": the ctime() slice Postfix logs.
std::string log_time(long when);

}  // namespace postern::anvil
