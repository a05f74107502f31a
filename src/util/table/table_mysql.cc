// mysql:/path/file.cf — lookups in MySQL/MariaDB as mysql_table(5) describes them.
//
// One connection is kept open and reused. When a query fails the connection is closed
// and the next host in "hosts" is tried; a host that cannot be reached stays out of
// rotation for Postfix's 60-second pause. A connection that had gone stale (the server
// restarted or dropped it while idle) is reopened at once instead of being blamed, so
// a restarted server answers the very next lookup. When no host answers, the lookup
// fails with an error (Postfix's temporary failure), never "not found".
#include <errmsg.h>
#include <mysql.h>

#include <memory>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/mysql_config.h"
#include "util/table/sql_common.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

using mysql::HostPool;
using mysql::HostSpec;
using mysql::MysqlConfig;

struct MysqlCloser {
    void operator()(MYSQL* m) const { mysql_close(m); }
};
using MysqlHandle = std::unique_ptr<MYSQL, MysqlCloser>;

struct ResultFreer {
    void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using MysqlResult = std::unique_ptr<MYSQL_RES, ResultFreer>;

// What one query attempt on one connection produced. Errors do not name the table:
// callers (postmap, the daemons) put its name in front.
struct Attempt {
    enum class Outcome { Rows, NoResultSet, Failed, ConnectionLost } outcome;
    MysqlResult rows;
    std::string error;
};

class MysqlTable : public Table {
public:
    MysqlTable(std::string spec, unsigned flags, std::string path, MysqlConfig cfg,
               sql::TemplateContext ctx, sql::DomainFilter domain)
        : Table(std::move(spec), flags),
          path_(std::move(path)),
          cfg_(std::move(cfg)),
          ctx_(std::move(ctx)),
          domain_(std::move(domain)),
          pool_(cfg_.hosts),
          conns_(cfg_.hosts.size()) {}

    LookupResult lookup(std::string_view key) override;

private:
    struct Conn {
        size_t index;
        bool fresh;  // opened by this call, not reused from an earlier lookup
    };
    Result<Conn> connection();
    bool connect(size_t i);
    void apply_options(MYSQL* m) const;
    Attempt run_query(MYSQL* m, const std::string& query);
    Result<MysqlResult> query(std::string_view key);
    LookupResult collect(MYSQL_RES* res, std::string_view key);
    void drop(size_t i, bool blame);

    std::string path_;
    MysqlConfig cfg_;
    sql::TemplateContext ctx_;
    sql::DomainFilter domain_;
    HostPool pool_;
    std::vector<MysqlHandle> conns_;  // one slot per host; at most one is open
    std::string last_connect_error_;  // for the lookup's error when no host answers
};

void MysqlTable::apply_options(MYSQL* m) const {
    unsigned int connect_timeout = static_cast<unsigned int>(cfg_.connect_timeout);
    unsigned int io_timeout = static_cast<unsigned int>(cfg_.query_timeout);
    if (connect_timeout > 0) mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    if (io_timeout > 0) {
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    }
    // The option file is read during connect, so its settings win over the ones above.
    if (cfg_.option_file) mysql_options(m, MYSQL_READ_DEFAULT_FILE, cfg_.option_file->c_str());
    if (!cfg_.option_group.empty())
        mysql_options(m, MYSQL_READ_DEFAULT_GROUP, cfg_.option_group.c_str());
    auto c = [](const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; };
    if (cfg_.tls_key_file || cfg_.tls_cert_file || cfg_.tls_ca_file || cfg_.tls_ca_path ||
        cfg_.tls_ciphers)
        mysql_ssl_set(m, c(cfg_.tls_key_file), c(cfg_.tls_cert_file), c(cfg_.tls_ca_file),
                      c(cfg_.tls_ca_path), c(cfg_.tls_ciphers));
    if (cfg_.tls_verify_cert != -1) {
        my_bool verify = cfg_.tls_verify_cert ? 1 : 0;
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
}

bool MysqlTable::connect(size_t i) {
    const HostSpec& h = cfg_.hosts[i];
    log::debug("dict_mysql_get_active: attempting to connect to host %s", h.spec.c_str());
    MysqlHandle m(mysql_init(nullptr));
    if (!m) log::fatal("dict_mysql: insufficient memory");
    apply_options(m.get());
    const char* host = h.unix_socket ? nullptr : h.name.c_str();
    const char* socket = h.unix_socket && !h.default_socket ? h.name.c_str() : nullptr;
    // CLIENT_MULTI_RESULTS lets stored procedures answer; multi-statements stay off, so
    // nothing a key contains can start a second statement.
    if (!mysql_real_connect(m.get(), host, cfg_.user.c_str(), cfg_.password.c_str(),
                            cfg_.dbname.c_str(), h.port, socket, CLIENT_MULTI_RESULTS)) {
        last_connect_error_ =
            strprintf("connect to mysql server %s: %s", h.spec.c_str(), mysql_error(m.get()));
        log::warn("%s", last_connect_error_.c_str());
        pool_.mark_down(i);
        return false;
    }
    log::debug("dict_mysql: successful connection to host %s", h.spec.c_str());
    conns_[i] = std::move(m);
    pool_.mark_active(i);
    return true;
}

// The index of a host with an open connection, connecting if there is none.
Result<MysqlTable::Conn> MysqlTable::connection() {
    if (auto a = pool_.active(); a && conns_[*a]) {
        log::debug("dict_mysql_get_active: found active connection to host %s",
                   cfg_.hosts[*a].spec.c_str());
        return Conn{*a, false};
    }
    while (auto i = pool_.next_candidate())
        if (connect(*i)) return Conn{*i, true};
    // Every host is down or inside its retry pause.
    return make_error(
        strprintf("no MySQL server available (last error: %s)", last_connect_error_.c_str()));
}

void MysqlTable::drop(size_t i, bool blame) {
    conns_[i].reset();
    if (blame)
        pool_.mark_down(i);
    else
        pool_.mark_closed(i);
}

Attempt MysqlTable::run_query(MYSQL* m, const std::string& q) {
    if (mysql_real_query(m, q.data(), q.size()) != 0) {
        unsigned err = mysql_errno(m);
        bool lost = err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST;
        return {lost ? Attempt::Outcome::ConnectionLost : Attempt::Outcome::Failed, nullptr,
                strprintf("query failed: %s", mysql_error(m))};
    }
    // A stored procedure answers with its SELECT's result set and then a status-only
    // one; more than one result set with rows is refused, as in Postfix.
    MysqlResult rows;
    for (;;) {
        MysqlResult r(mysql_store_result(m));
        if (!r && mysql_field_count(m) != 0)
            return {Attempt::Outcome::Failed, nullptr,
                    strprintf("query failed (mysql_store_result): %s", mysql_error(m))};
        if (r && rows)
            return {Attempt::Outcome::Failed, nullptr,
                    "query failed: multiple result sets returning data are not supported"};
        if (r) rows = std::move(r);
        int next = mysql_next_result(m);
        if (next > 0)
            return {Attempt::Outcome::Failed, nullptr,
                    strprintf("query failed (mysql_next_result): %s", mysql_error(m))};
        if (next < 0) break;
    }
    if (rows) return {Attempt::Outcome::Rows, std::move(rows), {}};
    if (cfg_.require_result_set)
        return {Attempt::Outcome::Failed, nullptr,
                "query failed: query returned no result set(require_result_set = yes)"};
    return {Attempt::Outcome::NoResultSet, nullptr, {}};
}

// Runs the query on the first host that answers. Ok(nullptr): no result set, and
// require_result_set = no allows that.
Result<MysqlResult> MysqlTable::query(std::string_view key) {
    std::string last_error;
    // Each host can fail once per lookup, and a stale connection be reopened once.
    for (size_t tries = 0; tries < 2 * cfg_.hosts.size() + 1; ++tries) {
        auto conn = connection();
        if (!conn) return make_error(last_error.empty() ? conn.error() : last_error);
        size_t i = conn->index;
        MYSQL* m = conns_[i].get();
        std::string q;
        // Escaping depends on the connection's character set, so it happens per host.
        ctx_.expand_query(cfg_.query, key,
                          [m](std::string_view piece, std::string& out) {
                              std::string buf(2 * piece.size() + 1, '\0');
                              unsigned long n = mysql_real_escape_string(
                                  m, buf.data(), piece.data(), piece.size());
                              out.append(buf.data(), n);
                          },
                          q);
        Attempt a = run_query(m, q);
        if (a.outcome == Attempt::Outcome::Rows) {
            log::debug("%s: successful query result from host %s", spec().c_str(),
                       cfg_.hosts[i].spec.c_str());
            return std::move(a.rows);
        }
        if (a.outcome == Attempt::Outcome::NoResultSet) return MysqlResult();
        if (a.outcome == Attempt::Outcome::ConnectionLost && !conn->fresh) {
            // The server restarted or timed the idle connection out: reconnect now.
            log::debug("%s: %s; reconnecting", spec().c_str(), a.error.c_str());
            drop(i, false);
            continue;
        }
        log::warn("%s: %s", spec().c_str(), a.error.c_str());
        last_error = a.error;
        drop(i, true);
    }
    return make_error(last_error);
}

LookupResult MysqlTable::collect(MYSQL_RES* res, std::string_view key) {
    my_ulonglong nrows = mysql_num_rows(res);
    log::debug("dict_mysql_lookup: retrieved %llu rows", static_cast<unsigned long long>(nrows));
    std::string result;
    long expansion = 0;
    unsigned nfields = mysql_num_fields(res);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
        unsigned long* lengths = mysql_fetch_lengths(res);
        for (unsigned j = 0; j < nfields; ++j) {
            if (row[j] == nullptr) continue;  // SQL NULL: skipped silently
            std::string_view value(row[j], lengths[j]);
            if (ctx_.expand_result(cfg_.result_format, value, key, result) &&
                cfg_.expansion_limit > 0 && ++expansion > cfg_.expansion_limit) {
                log::warn("dict_mysql_lookup: %s: Expansion limit exceeded for key: '%.*s'",
                          path_.c_str(), static_cast<int>(key.size()), key.data());
                return LookupResult::fail(strprintf("expansion limit %ld exceeded for key '%.*s'",
                                                    cfg_.expansion_limit,
                                                    static_cast<int>(key.size()), key.data()));
            }
        }
    }
    if (result.empty()) return LookupResult::miss();
    return LookupResult::hit(std::move(result));
}

LookupResult MysqlTable::lookup(std::string_view key_in) {
    std::string key(key_in);
    if (flags() & kFoldFix) key = lowercase(key);
    if ((flags() & kUtf8) && !sql::valid_utf8(key)) {
        log::warn("%s: non-UTF-8 key \"%s\": malformed UTF-8 or invalid codepoint",
                  spec().c_str(), key.c_str());
        return LookupResult::miss();
    }
    std::string error;
    switch (domain_.check(key, error)) {
        case sql::DomainFilter::Verdict::Skip:
            log::debug("dict_mysql_lookup: Skipping lookup of '%s'", key.c_str());
            return LookupResult::miss();
        case sql::DomainFilter::Verdict::Error:
            log::warn("%s", error.c_str());
            return LookupResult::fail(error);
        case sql::DomainFilter::Verdict::Lookup:
            break;
    }
    // Keys the templates cannot use (no domain for %d, ...) never reach the server.
    std::string probe;
    if (!ctx_.expand_query(cfg_.query, key,
                           [](std::string_view p, std::string& out) { out += p; }, probe))
        return LookupResult::miss();
    auto res = query(key);
    if (!res) return LookupResult::fail(res.error());
    if (!*res) return LookupResult::miss();
    return collect(res->get(), key);
}

}  // namespace

TableResult open_mysql_table(std::string_view spec, std::string_view name, unsigned flags) {
    std::string spec_s(spec);
    if (flags & kCreate)
        return make_error(strprintf("%s map requires O_RDONLY access mode", spec_s.c_str()));
    if (name.empty() || (name.front() != '/' && name.front() != '.'))
        return make_error(strprintf(
            "%s: parameters in main.cf (%.*s_hosts, ...) are not supported; name a "
            "mysql_table(5) file by its path", spec_s.c_str(), static_cast<int>(name.size()),
            name.data()));
    std::string path(name);
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    auto cfg = mysql::parse_mysql_config(*text, path);
    if (!cfg) return make_error(cfg.error());
    for (const std::string& w : cfg->warnings) log::warn("%s", w.c_str());
    sql::TemplateContext ctx(spec_s);
    if (Status s = ctx.add(cfg->query, true, path); !s) return make_error(s.error());
    if (Status s = ctx.add(cfg->result_format, false, path); !s) return make_error(s.error());
    auto domain = sql::DomainFilter::parse(cfg->domain, path);
    if (!domain) return make_error(domain.error());
    return std::unique_ptr<Table>(new MysqlTable(spec_s, flags, path, std::move(cfg.value()),
                                                 std::move(ctx), std::move(domain.value())));
}

}  // namespace postern::table
