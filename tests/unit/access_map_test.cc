#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "util/access/access_action.h"
#include "util/access/access_map.h"
#include "util/table/pattern_tables.h"

using namespace postern;
using namespace postern::access;

namespace {

using Entries = std::map<std::string, std::string>;

// A fixed-string table that remembers every key it was asked for.
class RecordingTable final : public table::Table {
public:
    explicit RecordingTable(std::map<std::string, std::string> entries, bool fail = false)
        : Table("memory:test", table::kReadOnly), entries_(std::move(entries)), fail_(fail) {}
    table::LookupResult lookup(std::string_view key) override {
        asked.emplace_back(key);
        if (fail_) return table::LookupResult::fail("connection refused");
        auto it = entries_.find(std::string(key));
        return it == entries_.end() ? table::LookupResult::miss() : table::LookupResult::hit(it->second);
    }
    std::vector<std::string> asked;

private:
    std::map<std::string, std::string> entries_;
    bool fail_;
};

std::vector<std::string> keys(const std::vector<Probe>& probes) {
    std::vector<std::string> out;
    for (const Probe& p : probes) out.push_back(p.key);
    return out;
}

Action action_of(std::string_view value, ActionParams params = {}) {
    ParsedAction p = parse_action(value, "hash:/etc/postfix/access", "datum", params);
    REQUIRE(std::holds_alternative<Action>(p));
    return std::get<Action>(p);
}

ActionError error_of(std::string_view value) {
    ParsedAction p = parse_action(value, "hash:/etc/postfix/access", "datum", {});
    REQUIRE(std::holds_alternative<ActionError>(p));
    return std::get<ActionError>(p);
}

}  // namespace

TEST_CASE("access map address lookup order without extensions") {
    LookupParams p;
    CHECK(keys(address_probes("user@mail.example.com", p)) ==
          std::vector<std::string>{"user@mail.example.com", "mail.example.com", ".example.com",
                                   ".com", "user@"});
    p.parent_matches_subdomains = true;
    CHECK(keys(address_probes("user@mail.example.com", p)) ==
          std::vector<std::string>{"user@mail.example.com", "mail.example.com", "example.com", "com",
                                   "user@"});
    // Only the whole address is a full key.
    auto probes = address_probes("user@example.com", p);
    CHECK_FALSE(probes[0].partial);
    for (size_t i = 1; i < probes.size(); ++i) CHECK(probes[i].partial);
}

TEST_CASE("access map address lookup order with a recipient delimiter") {
    LookupParams p;
    p.recipient_delimiter = "+";
    CHECK(keys(address_probes("user+ext@example.com", p)) ==
          std::vector<std::string>{"user+ext@example.com", "user@example.com", "example.com", ".com",
                                   "user+ext@", "user@"});
    p.recipient_delimiter = "+-";
    CHECK(keys(address_probes("user-ext@example.com", p))[1] == "user@example.com");
    // Reserved names and owner-/-request are never split.
    CHECK(keys(address_probes("mailer-daemon@example.com", p)).size() == 4);
    CHECK(keys(address_probes("postmaster+x@example.com", p))[1] == "postmaster@example.com");
    CHECK(keys(address_probes("owner-list@example.com", p))[1] == "example.com");
    CHECK(keys(address_probes("list-request@example.com", p))[1] == "example.com");
    p.owner_request_special = false;
    CHECK(keys(address_probes("owner-list@example.com", p))[1] == "owner@example.com");
    // A delimiter at the start would leave an empty local part: no split.
    CHECK(keys(address_probes("+x@example.com", p))[1] == "example.com");
}

TEST_CASE("access map quotes local parts that need it, external form first") {
    LookupParams p;
    CHECK(quote_local_part("a b@example.com") == "\"a b\"@example.com");
    CHECK(quote_local_part("a.b@example.com") == "a.b@example.com");
    CHECK(quote_local_part("a..b@x") == "\"a..b\"@x");
    CHECK(quote_local_part("q\"x@y") == "\"q\\\"x\"@y");
    auto k = keys(address_probes("a b@example.com", p));
    REQUIRE(k.size() >= 2);
    CHECK(k[0] == "\"a b\"@example.com");
    CHECK(k[1] == "a b@example.com");
    CHECK(k[k.size() - 2] == "\"a b\"@");
    CHECK(k.back() == "a b@");
}

TEST_CASE("access map falls back to parent domain") {
    RecordingTable t(Entries{{".example.com", "REJECT subdomain"}, {"example.org", "OK"}});
    table::Table* tables[] = {&t};
    LookupParams p;
    Outcome o = check_mail(tables, "joe@mail.example.com", p);
    REQUIRE(o.found());
    CHECK(o.value == "REJECT subdomain");
    CHECK(o.key == ".example.com");
    CHECK(t.asked == std::vector<std::string>{"joe@mail.example.com", "mail.example.com", ".example.com"});
    // Without parent_domain_matches_subdomains, "example.org" matches only itself.
    CHECK_FALSE(check_mail(tables, "joe@sub.example.org", p).found());
    p.parent_matches_subdomains = true;
    Outcome parent = check_mail(tables, "joe@sub.example.org", p);
    REQUIRE(parent.found());
    CHECK(parent.key == "example.org");
    // The same walk for host names.
    Outcome host = check_domain(tables, "a.b.example.org", p);
    REQUIRE(host.found());
    CHECK(host.key == "example.org");
}

TEST_CASE("access map falls back to user@ after the domain") {
    RecordingTable t(Entries{{"user@", "DISCARD"}});
    table::Table* tables[] = {&t};
    LookupParams p;
    p.recipient_delimiter = "+";
    Outcome o = check_mail(tables, "user+tag@example.com", p);
    REQUIRE(o.found());
    CHECK(o.key == "user@");
    CHECK(t.asked.back() == "user@");
    CHECK(t.asked[t.asked.size() - 2] == "user+tag@");
}

TEST_CASE("access map looks up the null sender as the null access key") {
    RecordingTable t(Entries{{"<>", "REJECT no bounces"}, {"", "never"}});
    table::Table* tables[] = {&t};
    LookupParams p;
    Outcome o = check_mail(tables, "", p);
    REQUIRE(o.found());
    CHECK(o.value == "REJECT no bounces");
    p.null_access_key = "MAILER-DAEMON";
    t.asked.clear();
    CHECK_FALSE(check_mail(tables, "", p).found());
    CHECK(t.asked == std::vector<std::string>{"MAILER-DAEMON"});
    p.null_access_key.clear();
    t.asked.clear();
    CHECK_FALSE(check_mail(tables, "", p).found());
    CHECK(t.asked.empty());
}

TEST_CASE("access map addresses without a domain are not looked up") {
    LookupParams p;
    CHECK(address_probes("joe", p).empty());
}

TEST_CASE("access map client lookup tries the name walk, then the address walk") {
    LookupParams p;
    RecordingTable t(Entries{{"192.0", "REJECT net"}});
    table::Table* tables[] = {&t};
    Outcome o = check_client(tables, "host.example.com", "192.0.2.1", p);
    REQUIRE(o.found());
    CHECK(o.key == "192.0");
    CHECK(t.asked == std::vector<std::string>{"host.example.com", ".example.com", ".com", "192.0.2.1",
                                              "192.0.2", "192.0"});
    CHECK(keys(ip_probes("2001:db8::1")) ==
          std::vector<std::string>{"2001:db8::1", "2001:db8:", "2001:db8", "2001"});
    CHECK(keys(ip_probes("10.1.2.3")) == std::vector<std::string>{"10.1.2.3", "10.1.2", "10.1", "10"});
}

TEST_CASE("access map does not walk parents of numerical host names") {
    LookupParams p;
    CHECK(keys(domain_probes("192.0.2.1", p)) == std::vector<std::string>{"192.0.2.1"});
    CHECK(keys(domain_probes("::1", p)) == std::vector<std::string>{"::1"});
    CHECK(keys(domain_probes("unknown", p)) == std::vector<std::string>{"unknown"});
}

TEST_CASE("access map handles helo names with a trailing dot without empty keys") {
    LookupParams p;
    CHECK(keys(domain_probes("a.b.", p)) == std::vector<std::string>{"a.b.", ".b.", "."});
    p.parent_matches_subdomains = true;
    CHECK(keys(domain_probes("a.b.", p)) == std::vector<std::string>{"a.b.", "b."});
    CHECK(domain_probes("", p).empty());
}

TEST_CASE("access map gives pattern tables only the whole string") {
    auto re = table::regexp_table_from_text("t", "/^example\\.com$/ OK domain\n/^user@$/ OK user\n");
    auto cidr = table::cidr_table_from_text("c", "192.0.2.0/24 REJECT cidr\n");
    table::Table* tables[] = {re.get()};
    LookupParams p;
    CHECK_FALSE(check_mail(tables, "user@example.com", p).found());
    CHECK_FALSE(check_domain(tables, "mail.example.com", p).found());
    CHECK(check_domain(tables, "example.com", p).found());
    table::Table* cidrs[] = {cidr.get()};
    Outcome o = check_client(cidrs, "unknown", "192.0.2.77", p);
    REQUIRE(o.found());
    CHECK(o.key == "192.0.2.77");
    CHECK(o.table == "cidr:c");
}

TEST_CASE("access map searches tables in order for each key before the next key") {
    RecordingTable a(Entries{{".example.com", "from a"}});
    RecordingTable b(Entries{{"mail.example.com", "from b"}});
    table::Table* tables[] = {&a, &b};
    Outcome o = check_domain(tables, "mail.example.com", LookupParams{});
    REQUIRE(o.found());
    CHECK(o.value == "from b");
}

TEST_CASE("access map stops at a table error") {
    RecordingTable broken(Entries{}, true);
    RecordingTable good(Entries{{"example.com", "OK"}});
    table::Table* tables[] = {&broken, &good};
    Outcome o = check_domain(tables, "example.com", LookupParams{});
    CHECK(o.status == Outcome::Status::Error);
    CHECK(o.error == "memory:test lookup error for \"example.com\": connection refused");
    CHECK(good.asked.empty());
}

TEST_CASE("access action OK, RELAY and all-numeric values accept") {
    CHECK(action_of("OK").type == ActionType::Ok);
    CHECK(action_of("ok trailing text").type == ActionType::Ok);
    CHECK(action_of("RELAY").type == ActionType::Ok);
    CHECK(action_of("1700000000").type == ActionType::Ok);
    // A bare code without text is all-numeric, hence OK, as in Postfix.
    CHECK(action_of("550").type == ActionType::Ok);
}

TEST_CASE("access action REJECT and DEFER use the configured codes and default DSNs") {
    Action r = action_of("REJECT");
    CHECK(r.type == ActionType::Reject);
    CHECK(r.code == 554);
    CHECK(r.dsn == "5.7.1");
    CHECK(r.text.empty());
    CHECK(reject_reply(r, "1.2.3.4", ReplyClass::Client) ==
          "554 5.7.1 <1.2.3.4>: Client host rejected: Access denied");
    Action t = action_of("reject 5.7.2 go away now", ActionParams{550, 450});
    CHECK(t.code == 550);
    CHECK(t.dsn == "5.7.2");
    CHECK(t.text == "go away now");
    Action d = action_of("DEFER try later", ActionParams{554, 450});
    CHECK(d.type == ActionType::Defer);
    CHECK(d.code == 450);
    CHECK(d.dsn == "4.7.1");
    CHECK(d.text == "try later");
    Action dp = action_of("DEFER_IF_PERMIT");
    CHECK(dp.type == ActionType::DeferIfPermit);
    CHECK(dp.code == 451);
    CHECK(reject_reply(dp, "x@y", ReplyClass::Sender) ==
          "451 4.7.1 <x@y>: Sender address rejected: Service unavailable");
    CHECK(action_of("DEFER_IF_REJECT maybe").type == ActionType::DeferIfReject);
}

TEST_CASE("access action 4NN and 5NN codes take an optional enhanced status") {
    Action a = action_of("550 5.1.1 no such user");
    CHECK(a.type == ActionType::Code);
    CHECK(a.code == 550);
    CHECK(a.dsn == "5.1.1");
    CHECK(a.text == "no such user");
    Action b = action_of("421 closing");
    CHECK(b.code == 421);
    CHECK(b.dsn == "4.7.1");
    CHECK(b.text == "closing");
    // An address DSN is fixed up for what was rejected.
    CHECK(reject_reply(a, "x@y", ReplyClass::Sender) == "550 5.1.7 <x@y>: Sender address rejected: no such user");
    CHECK(reject_reply(a, "x@y", ReplyClass::Recipient) ==
          "550 5.1.1 <x@y>: Recipient address rejected: no such user");
    CHECK(reject_reply(a, "host", ReplyClass::Helo) == "550 5.0.0 <host>: Helo command rejected: no such user");
    // "5.7" is no status code: it stays in the text.
    CHECK(action_of("554 5.7 text").text == "5.7 text");
}

TEST_CASE("access action keywords with arguments") {
    CHECK(action_of("DUNNO whatever").type == ActionType::Dunno);
    Action h = action_of("HOLD quarantine");
    CHECK(h.type == ActionType::Hold);
    CHECK(h.text == "quarantine");
    CHECK(action_of("DISCARD").type == ActionType::Discard);
    Action f = action_of("FILTER smtp:[127.0.0.1]:10025");
    CHECK(f.type == ActionType::Filter);
    CHECK(f.text == "smtp:[127.0.0.1]:10025");
    Action r = action_of("REDIRECT abuse@example.com");
    CHECK(r.type == ActionType::Redirect);
    CHECK(r.text == "abuse@example.com");
    CHECK(action_of("BCC archive@example.com").type == ActionType::Bcc);
    Action p = action_of("PREPEND X-Checked: yes");
    CHECK(p.type == ActionType::Prepend);
    CHECK(p.text == "X-Checked: yes");
    CHECK(action_of("WARN look here").type == ActionType::Warn);
    CHECK(action_of("INFO note").type == ActionType::Info);
    CHECK(action_of("HANGUP").type == ActionType::Hangup);
}

TEST_CASE("access action anything else is a restriction list") {
    Action a = action_of("permit_mynetworks, reject_unauth_destination  reject");
    CHECK(a.type == ActionType::Restrictions);
    CHECK(a.restrictions ==
          std::vector<std::string>{"permit_mynetworks", "reject_unauth_destination", "reject"});
    Action b = action_of("{ check_x, y } z");
    CHECK(b.restrictions == std::vector<std::string>{"{ check_x, y }", "z"});
    Action empty = action_of("");
    CHECK(empty.type == ActionType::Ok);
    REQUIRE(empty.warnings.size() == 1);
    CHECK(empty.warnings[0] == "access table hash:/etc/postfix/access entry  has empty value");
}

TEST_CASE("access action malformed entries are typed errors with Postfix's warnings") {
    ActionError f = error_of("FILTER");
    CHECK(f.effect == ActionError::Effect::Dunno);
    CHECK(f.warnings[0] == "access table hash:/etc/postfix/access entry \"datum\" has FILTER entry without value");
    CHECK(error_of("FILTER nocolon").warnings[0] ==
          "access table hash:/etc/postfix/access entry \"datum\" requires transport:destination");
    CHECK(error_of("REDIRECT nobody").warnings[0] ==
          "access table hash:/etc/postfix/access entry \"datum\" requires user@domain target");
    CHECK(error_of("BCC").effect == ActionError::Effect::Dunno);
    CHECK(error_of("PREPEND not a header").warnings[0] ==
          "access table hash:/etc/postfix/access entry \"datum\" requires header: text");
    ActionError t = error_of("check_client_access hash:/etc/other");
    CHECK(t.effect == ActionError::Effect::ServerError);
    REQUIRE(t.warnings.size() == 3);
    CHECK(t.warnings[0] ==
          "access table hash:/etc/postfix/access has entry with lookup table: check_client_access hash:/etc/other");
}

TEST_CASE("access action parser survives arbitrary bytes") {
    std::string s;
    for (int i = 0; i < 2000; ++i) {
        s.push_back(static_cast<char>((i * 37) % 256));
        (void)parse_action(s.substr(i % 50), "t", "d", {});
        (void)parse_action(std::string_view(s).substr(0, i % 7), "t", "d", {});
    }
    LookupParams p;
    p.recipient_delimiter = "+-";
    for (int i = 0; i < 500; ++i) {
        std::string a = s.substr(i % 100, i % 60);
        (void)address_probes(a, p);
        (void)domain_probes(a, p);
        (void)ip_probes(a);
    }
}
