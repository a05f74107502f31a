// master.cf (master(5)): one service per logical line, eight columns and then the
// command's arguments. Lines are read as Postfix's readlline() reads them (comments,
// continuation lines that start with whitespace); fields are checked the way the master
// daemon checks them (master_ent.c), with its error texts:
//   "/etc/postern/master.cf: line 3: field \"private\": bad value: \"x\"".
// Postfix 3.x "{ ... }" grouping is supported: "-o { name = value }" and "{a b}" as one
// argument.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::config {

enum class ServiceType { Inet, Unix, UnixDgram, Fifo, Pass };

// "inet", "unix", "unix-dgram", "fifo", "pass".
std::string_view service_type_name(ServiceType type);

struct MasterOverride {
    std::string name;
    std::string value;
};

struct MasterService {
    // The eight columns as written ("-" kept), for postconf -M style output.
    enum Column { kName, kType, kPrivate, kUnpriv, kChroot, kWakeup, kMaxproc, kCommand };
    std::array<std::string, 8> columns;
    int line = 0;          // line where the entry starts
    std::string raw_text;  // the logical line

    // Resolved values, with Postfix's defaults for "-".
    std::string name;  // service name (column 1)
    ServiceType type = ServiceType::Unix;
    bool private_service = true;  // default y
    bool unprivileged = true;     // default y
    bool chroot = false;          // default n (Postfix >= 3.0)
    int wakeup_seconds = 0;       // 0: never
    bool wakeup_conditional = false;  // "60?": only after the service was used
    int max_proc = 0;                 // 0: no limit; "-" gives default_process_limit
    bool max_proc_is_default = false;
    // inet only: "host:port", "[ipv6]:port" or "port"; host empty means all interfaces.
    std::string inet_host;
    std::string inet_port;

    std::string command;            // column 8, e.g. "smtpd" or "pipe"
    // Everything after the command, braces stripped and options normalized as Postfix
    // does ("-oname=value" -> "-o" "name=value", "-vo x=y" -> "-v" "-o" "x=y").
    std::vector<std::string> args;
    // The -o settings among the leading options, in order.
    std::vector<MasterOverride> overrides;

    // The value a later "-o name=..." sets, if any.
    std::optional<std::string> override_value(std::string_view name) const;
};

struct MasterCf {
    std::vector<MasterService> services;
    // Postfix's warnings: continuation at file start, "missing '}'", "-o" without '='.
    std::vector<std::string> warnings;

    // The service with that name and type, or nullptr.
    const MasterService* find(std::string_view name, std::string_view type) const;
};

// Parses master.cf text. `default_process_limit` resolves a "-" maxproc.
Result<MasterCf> parse_master_cf(std::string_view text, std::string_view path,
                                 int default_process_limit = 100);

// Reads DIR/master.cf ("open DIR/master.cf: No such file or directory" when missing).
Result<MasterCf> load_master_cf(const std::string& config_dir, int default_process_limit = 100);

// Splits on `separators`, keeping a balanced "{...}" (which may hold separators) inside
// one field: Postfix's mystrtokq() with "{}". An unbalanced '{' runs to the end.
std::vector<std::string_view> split_outside_braces(std::string_view s, std::string_view separators);

// Postfix's host_port() as master uses it for inet service names; the error is one of
// Postfix's ("missing service information", "garbage after \"]\"", ...).
Result<std::pair<std::string, std::string>> split_inet_endpoint(std::string_view name);

}  // namespace postern::config
