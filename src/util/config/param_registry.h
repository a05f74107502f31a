// The one parameter registry: every main.cf parameter Postern knows, with its type,
// Postfix's default (as `postconf -d` prints it), bounds and a one-line description.
// postconf -d, validation, each daemon's settings and the man page's parameter list all
// come from this table; a test checks they agree with Debian's Postfix.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace postern::config {

enum class ParamType {
    String,  // free text, expanded with $name
    Int,     // integer with optional bounds
    Long,    // large integer (sizes in bytes)
    Bool,    // yes/no
    Time,    // number with unit s/m/h/d/w; `time_unit` is the unit of a bare number
    List,    // comma/whitespace separated list (kept as a string, split on use)
    Raw,     // not expanded ($ kept literally), e.g. maps with $1 substitutions
};

struct ParamDef {
    std::string_view name;
    ParamType type;
    std::string_view default_value;  // literal default as `postconf -d` prints it
    long min = 0;                    // bounds for Int/Long/Time (seconds); max 0 = none
    long max = 0;                    // (String/List/Raw: length bounds, min 1 = not empty)
    char time_unit = 's';
    std::string_view description;
};

// Every parameter, sorted by name.
std::span<const ParamDef> param_registry();
// nullptr when the name is not in the registry.
const ParamDef* find_param(std::string_view name);

// Defaults that Postfix derives from the machine at run time (myhostname from
// gethostname, mydomain from myhostname, mynetworks from the interfaces, process_id,
// mail_version, ...). nullopt when `name` has a fixed default.
std::optional<std::string> derived_default(std::string_view name, std::string_view process_name);

}  // namespace postern::config
