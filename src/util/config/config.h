// Config: one process's view of main.cf — the file's entries, master.cf -o overrides and
// the registry's defaults — with Postfix's $name expansion and typed getters.
//
// Expansion (postconf(5)): $name, ${name}, ${name?value}, ${name?{value}},
// ${name:value}, ${name?{value}:{value}}, the 3.x expressions ${{a} == {b} ? {x} : {y}}
// with ==, !=, <level, <=level, >level, >=level, and $$ for a literal '$'.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/config/main_cf.h"
#include "util/config/master_cf.h"

namespace postern::config {

// The config directory a program uses: -c DIR, else $MAIL_CONFIG, else the default
// (/etc/postern unless the build says otherwise).
std::string config_directory(const char* dash_c_value);

class Config {
public:
    // Defaults only (no main.cf).
    Config();

    // Reads DIR/main.cf. A missing main.cf is an error, as with Postfix.
    static Result<Config> load(const std::string& config_dir, std::string_view process_name = "");
    // load() without logging the warnings: a daemon logs them once its maillog is set up.
    static Result<Config> read(const std::string& config_dir, std::string_view process_name = "");
    // Builds from text (tests, postconf -c with an in-memory file).
    static Result<Config> from_text(std::string_view text, std::string_view path,
                                    std::string_view process_name = "");

    const std::string& config_dir() const { return config_dir_; }
    const std::string& main_cf_path() const { return main_cf_path_; }
    // Entries as they stand in main.cf, in file order (postconf -n).
    const std::vector<ConfigEntry>& entries() const { return entries_; }
    // Warnings from reading main.cf, worded as Postfix's ("logical line must not start
    // with whitespace", "overriding earlier entry"). load() also logs them; read() and
    // from_text() only collect them.
    const std::vector<std::string>& warnings() const { return warnings_; }

    // Sets a value that wins over main.cf (master.cf -o, command line).
    void set_override(std::string_view name, std::string_view value);

    // Raw (unexpanded) value: override, else main.cf, else default; nullopt if unknown.
    std::optional<std::string> raw(std::string_view name) const;
    // True when main.cf or an override sets `name`.
    bool is_set(std::string_view name) const;
    // The registry's (or derived) default, unexpanded.
    std::optional<std::string> default_value(std::string_view name) const;

    // Expanded value; unknown names give "".
    std::string get(std::string_view name) const;
    // Typed getters, validated against the registry's bounds; a bad value is fatal as in
    // Postfix ("fatal: bad numerical configuration: name = value").
    long get_int(std::string_view name) const;
    bool get_bool(std::string_view name) const;
    long get_time(std::string_view name) const;  // seconds
    // List split on whitespace and commas (Postfix's CHARS_COMMA_SP).
    std::vector<std::string> get_list(std::string_view name) const;

    // Expands $name references in `text` against this config.
    std::string expand(std::string_view text) const;

    // Names that main.cf sets but that are neither in the registry nor referenced by
    // another parameter (postconf's "possible typo" warnings).
    std::vector<std::string> unused_names() const;
    // Names that main.cf values refer to ($name) that have neither a setting nor a
    // default (postconf's "undefined parameter" warnings), each once, in file order.
    std::vector<std::string> undefined_names() const;

    // Non-fatal variants for validation (postern check, postconf): the error text is the
    // one the fatal getter would log, e.g. "bad numerical configuration: name = value".
    // Expansion warnings (Postfix's wording) are joined with "; " before the final text.
    Result<std::string> try_expand(std::string_view text) const;
    Result<std::string> try_get(std::string_view name) const;
    Result<long> try_get_int(std::string_view name) const;
    Result<bool> try_get_bool(std::string_view name) const;
    Result<long> try_get_time(std::string_view name) const;
    // Tells the config about a master.cf service and its command (argv[0]), so that the
    // per-transport parameters Postfix derives from it exist with their "$default_..."
    // defaults (relay_destination_concurrency_limit for an smtp service "relay", and so
    // on) and count as used.
    void add_master_service(std::string_view service, std::string_view command);
    // The same for a parsed master.cf entry; its -o values also count as references
    // ($name in master.cf makes a main.cf name used, as in postconf).
    void add_master_service(const MasterService& service);
    // Applies a service's -o name=value settings as overrides (what a daemon started
    // for that service sees).
    void apply_master_overrides(const MasterService& service);
    // The -o names of `service` that postconf would call unused ("master.cf: unused
    // parameter: name=value"): not a known parameter, not a per-service or restriction
    // class name, and not referenced as $name by that service's -o values.
    std::vector<std::string> unused_overrides(const MasterService& service) const;
    const std::string& process_name() const { return process_name_; }

private:
    std::string config_dir_;
    std::string main_cf_path_;
    std::string process_name_;
    std::vector<ConfigEntry> entries_;
    std::vector<std::string> warnings_;
    std::map<std::string, std::string, std::less<>> file_values_;
    std::map<std::string, std::string, std::less<>> overrides_;
    // Per-service parameter name -> its default ("$default_destination_rate_delay").
    std::map<std::string, std::string, std::less<>> service_params_;
    // Derived defaults being computed right now (myhostname, mydomain, mynetworks): while
    // one is, it reads as undefined, as in Postfix where it is not yet in the dictionary.
    // This ends "mydomain = $myhostname" style loops.
    mutable std::vector<std::string> deriving_;
    // The first error met while computing a derived default inside an expansion; the
    // expansion reports it (try_*) or dies of it (get/expand), as Postfix would.
    mutable std::optional<std::string> derive_error_;
    mutable int expanding_ = 0;  // > 0 inside expand()/try_expand()
    Result<std::string> derive_mynetworks() const;
    // -o values of the master.cf services given to add_master_service().
    std::vector<std::string> master_values_;
};

// Converts a Postfix time value ("10s", "5m", "1h", "2d", "1w", or a bare number in
// `default_unit`) to seconds; nullopt when malformed, negative or too large for an int.
std::optional<long> parse_time_value(std::string_view value, char default_unit);

// mynetworks as Postfix derives it from the machine's interface addresses for
// mynetworks_style (host, subnet, class) and inet_protocols (all, ipv4, ipv6).
// The error reads as Postfix's: "unknown mynetworks mask style value ...".
Result<std::string> compute_mynetworks(std::string_view style, std::string_view inet_protocols);

}  // namespace postern::config
