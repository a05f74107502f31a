#include "util/table/mysql_config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <map>

#include "util/base/strings.h"
#include "util/config/main_cf.h"
#include "util/table/sql_common.h"

namespace postern::table::mysql {
namespace {

constexpr std::string_view kCommaSpace = ", \t\r\n";

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// A port number or a service name from /etc/services, as Postfix's find_inet_port().
Result<unsigned> parse_port(std::string_view s) {
    std::string text(s);
    if (all_digits(s)) {
        long v = 0;
        if (!parse_long(s, v) || v > 65535)
            return make_error(strprintf("bad port number: %s", text.c_str()));
        return static_cast<unsigned>(v);
    }
    struct servent* sp = getservbyname(text.c_str(), "tcp");
    if (sp == nullptr) return make_error(strprintf("unknown service: %s/tcp", text.c_str()));
    return static_cast<unsigned>(ntohs(static_cast<uint16_t>(sp->s_port)));
}

// Last-wins name = value pairs, with where each came from (Postfix's cfg_parser).
class Entries {
public:
    Entries(std::string_view path) : path_(path) {}

    void put(const config::ConfigEntry& e, std::vector<std::string>& warnings) {
        // Like Postfix's in-memory table: only a different value is worth a warning.
        auto it = values_.find(e.name);
        if (it != values_.end() && it->second != e.value)
            warnings.push_back(strprintf("%s, line %d: overriding earlier entry: %s=%s",
                                         path_.c_str(), e.line, e.name.c_str(),
                                         it->second.c_str()));
        values_[e.name] = e.value;
    }
    const std::string* find(std::string_view name) const {
        auto it = values_.find(std::string(name));
        return it == values_.end() ? nullptr : &it->second;
    }
    // cfg_get_str with a minimum length.
    Result<std::string> str(std::string_view name, std::string_view def, size_t min_len) const {
        const std::string* v = find(name);
        std::string value = v ? *v : std::string(def);
        if (value.size() < min_len)
            return make_error(strprintf("%s: bad string length %zu < %zu: %.*s = %s", path_.c_str(),
                                        value.size(), min_len, static_cast<int>(name.size()),
                                        name.data(), value.c_str()));
        return value;
    }
    std::optional<std::string> opt(std::string_view name) const {
        const std::string* v = find(name);
        return v ? std::optional<std::string>(*v) : std::nullopt;
    }
    Status boolean(std::string_view name, int& out) const {
        const std::string* v = find(name);
        if (v == nullptr) return Status::success();
        if (iequals(*v, "yes")) out = 1;
        else if (iequals(*v, "no")) out = 0;
        else
            return make_error(strprintf("%s: bad boolean configuration: %.*s = %s", path_.c_str(),
                                        static_cast<int>(name.size()), name.data(), v->c_str()));
        return Status::success();
    }
    Status integer(std::string_view name, long min, long& out) const {
        const std::string* v = find(name);
        if (v == nullptr) return Status::success();
        long n = 0;
        if (!parse_long(*v, n))
            return make_error(strprintf("%s: bad numerical configuration: %.*s = %s",
                                        path_.c_str(), static_cast<int>(name.size()), name.data(),
                                        v->c_str()));
        if (n < min)
            return make_error(strprintf("%s: invalid %.*s parameter value %ld < %ld",
                                        path_.c_str(), static_cast<int>(name.size()), name.data(),
                                        n, min));
        out = n;
        return Status::success();
    }

private:
    std::string path_;
    std::map<std::string, std::string> values_;
};

// The query from "query", else from the pre-2.2 select_field/table/where_field.
Result<std::string> query_of(const Entries& e) {
    if (const std::string* q = e.find("query"); q && !q->empty()) return *q;
    auto table = e.str("table", "", 1);
    if (!table) return table;
    auto select = e.str("select_field", "", 1);
    if (!select) return select;
    auto where = e.str("where_field", "", 1);
    if (!where) return where;
    auto extra = e.str("additional_conditions", "", 0);
    return sql::legacy_query(*select, *table, *where, *extra);
}

Status read_tls(const Entries& e, MysqlConfig& c) {
    c.tls_key_file = e.opt("tls_key_file");
    c.tls_cert_file = e.opt("tls_cert_file");
    c.tls_ca_file = e.opt("tls_CAfile");
    c.tls_ca_path = e.opt("tls_CApath");
    c.tls_ciphers = e.opt("tls_ciphers");
    return e.boolean("tls_verify_cert", c.tls_verify_cert);
}

}  // namespace

Result<HostSpec> parse_host(std::string_view item) {
    HostSpec h;
    h.spec = std::string(item);
    if (item.substr(0, 5) == "unix:") {
        h.unix_socket = true;
        h.name = std::string(item.substr(5));
        return h;
    }
    if (item.substr(0, 5) == "inet:") item.remove_prefix(5);
    size_t colon = item.rfind(':');
    if (colon != std::string_view::npos) {
        auto port = parse_port(item.substr(colon + 1));
        if (!port) return make_error(port.error());
        h.port = *port;
        item = item.substr(0, colon);
    }
    h.name = std::string(item);
    if (iequals(h.name, "localhost")) {
        // The MySQL client library's rule: "localhost" is its default UNIX socket.
        h.unix_socket = true;
        h.default_socket = true;
        h.name.clear();
    }
    return h;
}

Result<MysqlConfig> parse_mysql_config(std::string_view text, std::string_view path) {
    MysqlConfig c;
    auto parsed = config::parse_main_cf(text, path, c.warnings);
    if (!parsed) return make_error(parsed.error());
    Entries e(path);
    for (const config::ConfigEntry& entry : *parsed) e.put(entry, c.warnings);

    // Checked in Postfix's order, so the first error reported is the same one.
    auto user = e.str("user", "", 0);
    auto password = e.str("password", "", 0);
    auto dbname = e.str("dbname", "", 1);
    if (!dbname) return make_error(dbname.error());
    auto result_format = e.str("result_format", "%s", 1);
    if (!result_format) return make_error(result_format.error());
    c.user = *user;
    c.password = *password;
    c.dbname = *dbname;
    c.result_format = *result_format;
    c.option_file = e.opt("option_file");
    c.option_group = e.opt("option_group").value_or("client");
    if (Status s = read_tls(e, c); !s) return make_error(s.error());
    int require = 1;
    if (Status s = e.boolean("require_result_set", require); !s) return make_error(s.error());
    c.require_result_set = require != 0;
    // Postfix sets no minimum: a negative limit, like 0, means "no limit".
    if (Status s = e.integer("expansion_limit", LONG_MIN, c.expansion_limit); !s)
        return make_error(s.error());
    auto query = query_of(e);
    if (!query) return make_error(query.error());
    c.query = *query;
    c.domain = e.opt("domain").value_or("");
    if (Status s = e.integer("connect_timeout", 0, c.connect_timeout); !s)
        return make_error(s.error());
    if (Status s = e.integer("query_timeout", 0, c.query_timeout); !s)
        return make_error(s.error());

    std::string hosts = e.opt("hosts").value_or("");
    std::vector<std::string_view> items = split_tokens(hosts, kCommaSpace);
    if (items.empty()) items.push_back("localhost");
    for (std::string_view item : items) {
        auto h = parse_host(item);
        if (!h) return make_error(h.error());
        c.hosts.push_back(std::move(h.value()));
    }
    return c;
}

// ---- host choice ---------------------------------------------------------------------

HostPool::HostPool(std::vector<HostSpec> hosts, Clock clock)
    : hosts_(std::move(hosts)), state_(hosts_.size()), clock_(std::move(clock)) {
    if (!clock_)
        clock_ = [] {
            return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
        };
    // Spreads the load of many processes over mirrored servers.
    rng_.seed(static_cast<unsigned>(getpid()) ^
              static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
}

std::optional<size_t> HostPool::active() const {
    for (size_t i = 0; i < state_.size(); ++i)
        if (state_[i].state == State::Active) return i;
    return std::nullopt;
}

bool HostPool::eligible(const Entry& e, long now) const {
    if (e.state == State::Untried) return true;
    return e.state == State::Failed && now > e.retry_after;
}

std::optional<size_t> HostPool::next_candidate() {
    long now = clock_();
    for (bool want_unix : {true, false}) {
        std::vector<size_t> pick;
        for (size_t i = 0; i < hosts_.size(); ++i)
            if (hosts_[i].unix_socket == want_unix && eligible(state_[i], now)) pick.push_back(i);
        if (pick.empty()) continue;
        return pick[std::uniform_int_distribution<size_t>(0, pick.size() - 1)(rng_)];
    }
    return std::nullopt;
}

void HostPool::mark_active(size_t i) { state_[i] = {State::Active, 0}; }

void HostPool::mark_down(size_t i) {
    state_[i] = {State::Failed, clock_() + kRetryIntervalSeconds};
}

void HostPool::mark_closed(size_t i) { state_[i] = {State::Untried, 0}; }

}  // namespace postern::table::mysql
