#include "smtpd/smtpd_anvil.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/table/table.h"

namespace postern::smtpd {
namespace anvil_proto = ipc::anvil;

namespace {

constexpr std::string_view kExceptionsParam = "smtpd_client_event_limit_exceptions";

// ---- smtpd_client_event_limit_exceptions (Postfix's namadr_list) ----

struct Network {
    int family = 0;
    std::array<unsigned char, 16> addr{};
    unsigned prefix = 0;
};

bool parse_ip(std::string_view text, Network& out) {
    std::string s(text);
    if (inet_pton(AF_INET, s.c_str(), out.addr.data()) == 1) {
        out.family = AF_INET;
        out.prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), out.addr.data()) == 1) {
        out.family = AF_INET6;
        out.prefix = 128;
        return true;
    }
    return false;
}

// "192.0.2.1", "192.0.2.0/24", "[2001:db8::1]", "[2001:db8::]/32"; nullopt: not a network.
std::optional<Network> parse_network(std::string_view pattern) {
    std::string_view addr = pattern, mask;
    if (auto slash = pattern.find('/'); slash != std::string_view::npos) {
        addr = pattern.substr(0, slash);
        mask = pattern.substr(slash + 1);
    }
    if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    Network n;
    if (!parse_ip(addr, n)) return std::nullopt;
    if (!mask.empty()) {
        long bits = -1;
        if (!parse_long(mask, bits) || bits < 0 || bits > static_cast<long>(n.prefix)) return std::nullopt;
        n.prefix = static_cast<unsigned>(bits);
    }
    return n;
}

bool network_contains(const Network& net, const Network& host) {
    if (net.family != host.family) return false;
    unsigned full = net.prefix / 8, rest = net.prefix % 8;
    if (std::memcmp(net.addr.data(), host.addr.data(), full) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (net.addr[full] & mask) == (host.addr[full] & mask);
}

struct Pattern {
    bool negate = false;
    std::optional<Network> network;
    std::shared_ptr<table::Table> table;
    std::string name;  // lower-case host or domain pattern
};

bool name_matches(const std::string& pattern, const std::string& name, bool parent) {
    if (name.empty() || name == "unknown") return false;
    if (pattern == name) return true;
    bool dot = pattern.front() == '.';
    if (!dot && !parent) return false;
    std::string suffix = dot ? pattern : "." + pattern;
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool pattern_matches(const Pattern& p, const ClientFacts& client, bool parent) {
    if (p.table) {
        for (const std::string& key : {client.name, client.address}) {
            if (key.empty() || key == "unknown") continue;
            table::LookupResult r = p.table->lookup(key);
            if (r.found()) return true;
            if (r.status == table::LookupResult::Status::Error)
                log::warn("%s: %s lookup error for \"%s\": %s", std::string(kExceptionsParam).c_str(),
                          p.table->spec().c_str(), key.c_str(), r.error.c_str());
        }
        return false;
    }
    if (p.network) {
        Network host;
        return parse_ip(client.address, host) && network_contains(*p.network, host);
    }
    return name_matches(p.name, lowercase(client.name), parent);
}

Status add_patterns(std::vector<Pattern>& out, const std::vector<std::string>& patterns, int depth);

Status add_pattern(std::vector<Pattern>& out, std::string_view text, int depth) {
    Pattern p;
    while (!text.empty() && text.front() == '!') {
        p.negate = !p.negate;
        text.remove_prefix(1);
    }
    if (text.empty()) return make_error(std::string(kExceptionsParam) + ": empty pattern after \"!\"");
    if (text.front() == '/') {
        if (depth > 5) return make_error("/file include nested too deep: " + std::string(text));
        auto body = read_file(std::string(text));
        if (!body) return make_error(std::string(kExceptionsParam) + ": open " + std::string(text) + ": " + body.error());
        std::vector<std::string> inner;
        for (std::string_view line : split_tokens(*body, "\n")) {
            if (line = trim(line); line.empty() || line.front() == '#') continue;
            for (std::string_view tok : split_tokens(line, " \t,")) inner.emplace_back(tok);
        }
        return add_patterns(out, inner, depth + 1);
    }
    std::string_view type, name;
    if (text.front() != '[' && table::split_spec(text, type, name) && !parse_network(text)) {
        auto t = table::open_table(text);
        if (!t) return make_error(std::string(kExceptionsParam) + ": " + t.error());
        p.table = std::shared_ptr<table::Table>(std::move(*t));
    } else if (auto net = parse_network(text)) {
        p.network = net;
    } else {
        p.name = lowercase(text);
    }
    out.push_back(std::move(p));
    return {};
}

Status add_patterns(std::vector<Pattern>& out, const std::vector<std::string>& patterns, int depth) {
    for (const std::string& s : patterns)
        if (Status st = add_pattern(out, s, depth); !st) return st;
    return {};
}

bool parent_style(const config::Config& config) {
    auto list = config.get_list("parent_domain_matches_subdomains");
    return std::find(list.begin(), list.end(), kExceptionsParam) != list.end();
}

}  // namespace

Result<ExceptionMatcher> make_exception_matcher(const std::vector<std::string>& patterns,
                                                bool parent_matches_subdomains) {
    auto list = std::make_shared<std::vector<Pattern>>();
    if (Status st = add_patterns(*list, patterns, 0); !st) return make_error(st.error());
    return ExceptionMatcher([list, parent_matches_subdomains](const ClientFacts& client) {
        for (const Pattern& p : *list)
            if (pattern_matches(p, client, parent_matches_subdomains)) return !p.negate;
        return false;
    });
}

Result<ExceptionMatcher> make_exception_matcher(const config::Config& config) {
    return make_exception_matcher(config.get_list(kExceptionsParam), parent_style(config));
}

// ---- settings and the process-wide anvil client ----

LimitSettings LimitSettings::from_config(const config::Config& config) {
    LimitSettings s;
    s.connection_count = config.get_int("smtpd_client_connection_count_limit");
    s.connection_rate = config.get_int("smtpd_client_connection_rate_limit");
    s.message_rate = config.get_int("smtpd_client_message_rate_limit");
    s.recipient_rate = config.get_int("smtpd_client_recipient_rate_limit");
    s.auth_rate = config.get_int("smtpd_client_auth_rate_limit");
    s.new_tls_rate = config.get_int("smtpd_client_new_tls_session_rate_limit");
    s.myhostname = config.get("myhostname");
    // ipc_timeout (3600 s) is far too long to block every session of this process on a
    // wedged anvil; Postfix's process-per-client smtpd can afford it, we cannot.
    s.anvil_timeout = std::min(config.get_time("ipc_timeout"), 10L);
    return s;
}

Result<std::unique_ptr<AnvilLimits>> AnvilLimits::create(const config::Config& config) {
    auto exempt = make_exception_matcher(config);
    if (!exempt) return make_error(exempt.error());
    return std::make_unique<AnvilLimits>(LimitSettings::from_config(config), std::move(*exempt));
}

AnvilLimits::AnvilLimits(LimitSettings settings, ExceptionMatcher exempt)
    : settings_(std::move(settings)),
      exempt_(std::move(exempt)),
      shared_(settings_.anvil_socket, settings_.anvil_timeout) {}

std::unique_ptr<SessionLimits> AnvilLimits::new_session(const SessionFacts& facts) {
    return std::make_unique<SessionLimits>(*this, facts);
}

std::optional<anvil_proto::AnvilReply> AnvilLimits::call(anvil_proto::AnvilClient& client,
                                                         anvil_proto::Request request, const SessionFacts& facts) {
    auto reply = client.call(request, facts.service_name, facts.client.address);
    if (!reply) {
        // Postfix's anvil_clnt logs per failed call; once per process is enough to
        // tell the admin that the limits are off, without flooding the log.
        if (!warned_) log::warn("anvil: %s; client limits are not enforced", reply.error().c_str());
        warned_ = true;
        return std::nullopt;
    }
    warned_ = false;
    return *reply;
}

// ---- per session ----

SessionLimits::SessionLimits(AnvilLimits& limits, const SessionFacts& facts)
    : limits_(limits), facts_(facts) {}

SessionLimits::~SessionLimits() { disconnect(); }

bool SessionLimits::exempt() {
    if (!exempt_) exempt_ = limits_.exempt_ && limits_.exempt_(facts_.client);
    return *exempt_;
}

std::optional<LimitReply> SessionLimits::check_connect() {
    const LimitSettings& s = limits_.settings_;
    if (!s.counts_connections() || exempt()) return std::nullopt;
    own_ = std::make_unique<anvil_proto::AnvilClient>(s.anvil_socket, s.anvil_timeout);
    auto reply = limits_.call(*own_, anvil_proto::Request::Connect, facts_);
    if (!reply) {
        own_.reset();
        return std::nullopt;
    }
    connected_ = true;
    const char* what = nullptr;
    long value = 0;
    if (s.connection_count > 0 && reply->count > s.connection_count) {
        what = "Connection concurrency";
        value = reply->count;
    } else if (s.connection_rate > 0 && reply->rate > s.connection_rate) {
        what = "Connection rate";
        value = reply->rate;
    }
    if (!what) return std::nullopt;
    log::warn("%s limit exceeded: %ld from %s for service %s", what, value, facts_.client.namaddr().c_str(),
              facts_.service_name.c_str());
    return LimitReply{"421 4.7.0 " + s.myhostname + " Error: too many connections from " + facts_.client.address,
                      true};
}

void SessionLimits::disconnect() {
    if (!connected_) return;
    connected_ = false;
    limits_.call(*own_, anvil_proto::Request::Disconnect, facts_);
    own_.reset();
}

std::optional<long> SessionLimits::rate(anvil_proto::Request request, long limit) {
    if (limit <= 0 || exempt()) return std::nullopt;
    auto reply = limits_.call(own_ ? *own_ : limits_.shared_, request, facts_);
    if (!reply || reply->rate <= limit) return std::nullopt;
    return reply->rate;
}

// The per-command rates: the same check, Postfix's own words for each.
struct SessionLimits::RateRule {
    anvil_proto::Request request;
    long LimitSettings::*limit;
    const char* warning;  // "...: 3 from host[addr] for service smtp"
    const char* reply;    // "... from addr"
};

namespace {
using Rule = SessionLimits::RateRule;
constexpr Rule kMailRule{anvil_proto::Request::Message, &LimitSettings::message_rate,
                         "Message delivery request rate limit exceeded", "450 4.7.1 Error: too much mail from "};
constexpr Rule kRcptRule{anvil_proto::Request::Recipient, &LimitSettings::recipient_rate,
                         "Recipient address rate limit exceeded", "450 4.7.1 Error: too many recipients from "};
constexpr Rule kAuthRule{anvil_proto::Request::Auth, &LimitSettings::auth_rate,
                         "AUTH command rate limit exceeded", "450 4.7.1 Error: too many AUTH commands from "};
}  // namespace

std::optional<LimitReply> SessionLimits::check_rate(const RateRule& rule) {
    auto r = rate(rule.request, limits_.settings_.*rule.limit);
    if (!r) return std::nullopt;
    log::warn("%s: %ld from %s for service %s", rule.warning, *r, facts_.client.namaddr().c_str(),
              facts_.service_name.c_str());
    return LimitReply{rule.reply + facts_.client.address, false};
}

std::optional<LimitReply> SessionLimits::check_mail() { return check_rate(kMailRule); }
std::optional<LimitReply> SessionLimits::check_rcpt() { return check_rate(kRcptRule); }
std::optional<LimitReply> SessionLimits::check_auth() { return check_rate(kAuthRule); }

std::optional<LimitReply> SessionLimits::check_starttls() {
    // newtls_report only reads the rate; the handshake that follows counts.
    if (!rate(anvil_proto::Request::NewTlsReport, limits_.settings_.new_tls_rate)) return std::nullopt;
    log::warn("Refusing STARTTLS request from %s for service %s", facts_.client.namaddr().c_str(),
              facts_.service_name.c_str());
    return LimitReply{"454 4.7.0 Error: too many new TLS sessions from " + facts_.client.namaddr(), false};
}

std::optional<LimitReply> SessionLimits::check_tls_established(bool session_reused) {
    if (session_reused) return std::nullopt;
    auto r = rate(anvil_proto::Request::NewTls, limits_.settings_.new_tls_rate);
    if (!r) return std::nullopt;
    log::warn("New TLS session rate limit exceeded: %ld from %s for service %s", *r,
              facts_.client.namaddr().c_str(), facts_.service_name.c_str());
    return LimitReply{"421 4.7.0 " + limits_.settings_.myhostname + " Error: too many new TLS sessions from " +
                          facts_.client.namaddr(),
                      true};
}

}  // namespace postern::smtpd
