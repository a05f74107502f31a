// The parts of a mysql_table(5) table that need no server: its .cf file and the choice
// of which host to talk to next. table_mysql.cc adds the libmariadb connection.
#pragma once

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::table::mysql {

// One "hosts" entry: "unix:/path", "inet:host[:port]" or "host[:port]".
struct HostSpec {
    std::string spec;            // as written, for log lines ("inet:db1:3306")
    bool unix_socket = false;    // connect over a UNIX-domain socket
    bool default_socket = false; // "localhost": the client library's default socket
    std::string name;            // socket path or host name
    unsigned port = 0;           // 0: the library default (3306)
};

// "localhost" means the default UNIX socket, as the MySQL client library treats it.
Result<HostSpec> parse_host(std::string_view item);

// Postfix keeps a dead host out of rotation this long (RETRY_CONN_INTV in dict_mysql.c).
inline constexpr long kRetryIntervalSeconds = 60;

struct MysqlConfig {
    std::vector<HostSpec> hosts;
    std::string user;
    std::string password;
    std::string dbname;
    std::string query;  // from "query", else built from the legacy parameters
    std::string result_format = "%s";
    std::string domain;
    long expansion_limit = 0;  // <= 0: no limit
    std::optional<std::string> option_file;
    std::string option_group = "client";  // empty: read no option group
    std::optional<std::string> tls_key_file, tls_cert_file, tls_ca_file, tls_ca_path,
        tls_ciphers;
    int tls_verify_cert = -1;  // -1: leave the library's default
    bool require_result_set = true;
    // Postern additions (Postfix 3.7 relies on option_file for these): a hung server
    // makes a lookup fail after this long instead of blocking the daemon. 0: no limit.
    long connect_timeout = 10;
    long query_timeout = 30;
    // "/path, line N: overriding earlier entry: name=value" lines, for the caller to log.
    std::vector<std::string> warnings;
};

// Parses the text of a mysql_table(5) file. Errors read as Postfix words them
// ("/etc/postern/x.cf: bad string length 0 < 1: dbname = ").
Result<MysqlConfig> parse_mysql_config(std::string_view text, std::string_view path);

// Which host to use: the one with an open connection, else one not tried yet or whose
// retry pause is over, UNIX sockets before TCP, in random order among equals (Postfix's
// documented order). The clock is injectable so the pause can be tested.
class HostPool {
public:
    using Clock = std::function<long()>;  // seconds
    HostPool(std::vector<HostSpec> hosts, Clock clock = {});

    const std::vector<HostSpec>& hosts() const { return hosts_; }
    std::optional<size_t> active() const;
    // Next host to connect to, or nullopt when every host is down and still pausing.
    std::optional<size_t> next_candidate();

    void mark_active(size_t i);
    // The connection broke or its query failed: keep the host out for the retry pause.
    void mark_down(size_t i);
    // The connection was closed without blame (it had gone stale): try it again at once.
    void mark_closed(size_t i);

private:
    enum class State { Untried, Active, Failed };
    struct Entry {
        State state = State::Untried;
        long retry_after = 0;
    };
    bool eligible(const Entry& e, long now) const;

    std::vector<HostSpec> hosts_;
    std::vector<Entry> state_;
    Clock clock_;
    std::minstd_rand rng_;
};

}  // namespace postern::table::mysql
