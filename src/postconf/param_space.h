// The parameter names postconf knows, as Postfix's postconf builds them: built-in names
// (the registry), service-defined names (per-transport parameters derived from master.cf
// service names) and user-defined names ($name references and smtpd_restriction_classes
// entries that have a name=value in main.cf or master.cf). Printing, -x expansion and the
// "unused parameter" warnings all ask this table.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "postconf/master_entry.h"
#include "util/config/config.h"

namespace postern::postconf {

enum ParamClass : unsigned { kBuiltin = 1, kService = 2, kUser = 4, kAllClasses = 7 };

struct ParamNode {
    unsigned cls = kBuiltin;
    bool raw = false;                // not $name-expanded (the registry's Raw type)
    std::string service_default;     // service-defined: the parameter the default refers to
};

// How a value is looked up: Postfix's SHOW_DEFS / SHOW_NONDEF / SHOW_EVAL bits.
struct ShowMode {
    bool defaults = false;
    bool nondefault = false;
    bool eval = false;
};

using ValueMap = std::map<std::string, std::string, std::less<>>;

class ParamSpace {
public:
    // `main_values` is main.cf as read (empty for -d); `config_dir` prefixes warnings.
    ParamSpace(const config::Config& cfg, ValueMap main_values, std::string config_dir);

    void register_builtin();
    void register_service(const std::vector<MasterEntry>& entries);
    // Scans main.cf and master.cf -o values; undefined $names are reported to `warnings`.
    void register_user(const std::vector<MasterEntry>& entries, std::vector<std::string>& warnings);

    const ParamNode* find(std::string_view name) const;
    // Names of the given classes, sorted.
    std::vector<std::string> names(unsigned classes) const;
    const ValueMap& main_values() const { return main_; }

    // The value postconf prints for `name` under `mode` (nullopt: print nothing).
    std::optional<std::string> value(std::string_view name, const ParamNode& node, const ShowMode& mode) const;
    std::string default_value(std::string_view name, const ParamNode& node) const;
    // $name expansion as postconf -x does it; `local` is the index of a master.cf entry,
    // whose read-only names (service_name, process_name) and -o settings come first.
    std::string expand(std::string_view text, const ShowMode& mode, int local = -1) const;
    // A master.cf entry's -o settings, without read-only names (postconf -P).
    const ValueMap& local_params(size_t entry) const;

    // "unused parameter" warnings for main.cf and master.cf, worded as Postfix's.
    std::vector<std::string> unused_main_warnings(const std::vector<std::string>& candidates) const;
    std::vector<std::string> unused_master_warnings(const std::vector<MasterEntry>& entries) const;

private:
    void scan_namespace(const ValueMap& values, int local, const std::vector<MasterEntry>& entries,
                        std::vector<std::string>& warnings);
    void flag_user_parameter(const std::string& name, int local, bool warn_undefined,
                             std::vector<std::string>& warnings);
    // Database client tables named in a value (dbms_params.cc): "mysql:/path" files are
    // checked for unknown settings, legacy "mysql:name" makes name_hosts etc. valid.
    void register_dbms(const std::string& value, int local, std::vector<std::string>& warnings);
    void register_dbms_tokens(std::string_view text, int local, bool recurse, std::vector<std::string>& warnings);
    void check_dbms_client(std::string_view type, const std::string& path, std::vector<std::string>& warnings);

    const config::Config& cfg_;
    ValueMap main_;
    std::string config_dir_;
    std::map<std::string, ParamNode, std::less<>> nodes_;
    std::vector<ValueMap> local_params_;               // per master.cf entry: its -o settings
    std::vector<ValueMap> local_ro_;                   // per entry: service_name, process_name
    std::vector<std::set<std::string, std::less<>>> local_valid_;  // per entry: names valid there
    std::set<std::string, std::less<>> restriction_classes_;
    std::set<std::string, std::less<>> dbms_files_seen_;  // each client file is checked once
};

}  // namespace postern::postconf
