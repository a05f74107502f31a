// postconf's view of master.cf: each entry as its fields, with "-" kept (postconf shows
// defaults as "-") and daemon options normalized the way Postfix's postconf does it
// ("-oname=value" and "-o { name = value }" both become "-o" "name=value").
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::postconf {

inline constexpr int kMasterMinFields = 8;  // service .. command
inline constexpr int kFieldCommand = 7;
inline constexpr int kFieldWildcard = -1;
inline constexpr std::string_view kMasterBlanks = " \t\r\n";

struct MasterEntry {
    std::vector<std::string> argv;  // at least kMasterMinFields
    int line = 0;                   // first line of the entry in master.cf

    const std::string& service() const { return argv[0]; }
    const std::string& type() const { return argv[1]; }
    std::string name_space() const { return argv[0] + "/" + argv[1]; }
    // The -o name=value settings, in order; a later one replaces an earlier one.
    std::map<std::string, std::string, std::less<>> params() const;
};

// Parses one logical master.cf line. Errors: "bad field count", or the field checks
// ("invalid type field \"x\" in \"...\""). `warnings` gets brace-syntax complaints.
Result<MasterEntry> parse_master_entry(std::string_view text, std::vector<std::string>& warnings);

// Reads the file; the error is "open PATH: reason" or "file PATH: line N: reason".
struct MasterFile {
    std::vector<MasterEntry> entries;
    std::vector<std::string> warnings;
};
Result<MasterFile> read_master_cf(const std::string& path);

// Splits a field name ("service", ..., "command", "*"); nullopt if unknown.
std::optional<int> parse_field_name(std::string_view name);
std::string_view field_name(int field);

// Splits "name/type[/more]" on '/', requires min..max parts, fills missing parts with "*";
// nullopt on bad syntax ('*' only as a whole part).
std::optional<std::vector<std::string>> parse_service_pattern(std::string_view pattern, int min, int max);
bool match_service(const std::vector<std::string>& pattern, const MasterEntry& e);
bool match_service(const std::vector<std::string>& pattern, std::string_view name,
                   std::string_view type);

// Replaces a field (the command field is split again and normalized), then re-checks.
Status edit_master_field(MasterEntry& e, int field, std::string_view value);
// Sets (value given) or removes (nullopt) one "-o name=value".
void edit_master_param(MasterEntry& e, std::string_view name, const std::optional<std::string>& value);

// Formats an entry as postconf -M does; `fold` wraps at 80 columns; `expand` (may be
// empty) rewrites -o values for postconf -Mx.
std::string format_master_entry(const MasterEntry& e, bool fold,
                                const std::function<std::string(std::string_view)>& expand_value);
// postconf -F: "service/type/field = value", or the value alone with `hide_name`.
std::string format_master_field(const MasterEntry& e, int field, bool fold, bool hide_name,
                                const std::function<std::string(std::string_view)>& expand_value);

}  // namespace postern::postconf
