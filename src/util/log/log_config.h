// Logging set up from main.cf in one line: every program calls
//     log::configure_from(config);
// after loading its Config. It reads syslog_name, syslog_facility, maillog_file,
// maillog_file_prefixes, maillog_file_permissions and myhostname, enforces
// maillog_file_prefixes as Postfix does, and keeps the program's stderr/stdout choices.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/log/log.h"

namespace postern::config {
class Config;
}

namespace postern::log {

// Returns the expanded value of a main.cf parameter ("" when unset and no default).
using ParamLookup = std::function<std::string(std::string_view name)>;

// The logging settings that main.cf asks for, starting from `base` (which keeps the
// program's own choices: to_stderr, tag, maillog_stdout_ok). Errors read as Postfix's:
// "maillog_file value '/x' does not match any prefix in maillog_file_prefixes".
Result<Settings> settings_from(const ParamLookup& get, const Settings& base);

// settings_from(config) applied with configure(); a bad setting is fatal, as in Postfix.
void configure_from(const config::Config& config);

}  // namespace postern::log
