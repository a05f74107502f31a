#include "util/log/log_config.h"

#include "util/base/strings.h"
#include "util/config/config.h"

namespace postern::log {

Result<Settings> settings_from(const ParamLookup& get, const Settings& base) {
    Settings s = base;
    s.syslog_name = get("syslog_name");
    if (s.syslog_name.empty()) s.syslog_name = base.syslog_name;
    std::string facility = get("syslog_facility");
    if (!facility.empty()) {
        if (facility_code(facility) < 0)
            return make_error(strprintf("parameter syslog_facility: unrecognized value: %s",
                                        facility.c_str()));
        s.syslog_facility = facility;
    }
    std::string host = get("myhostname");
    if (!host.empty()) s.hostname = host;
    s.maillog_file = get("maillog_file");
    if (!s.maillog_file.empty()) {
        Status st = check_maillog_prefix(s.maillog_file, get("maillog_file_prefixes"));
        if (!st.ok()) return make_error(st.error());
    }
    // Postfix 3.9 added maillog_file_permissions (0600 or 0644); older releases
    // created the file 0644. An empty value (parameter unknown) keeps the safe 0600.
    std::string mode = get("maillog_file_permissions");
    if (mode == "0644" || mode == "644") {
        s.maillog_file_mode = 0644;
    } else if (mode.empty() || mode == "0600" || mode == "600") {
        s.maillog_file_mode = 0600;
    } else {
        return make_error(strprintf("parameter maillog_file_permissions: unrecognized value: %s "
                                    "(specify 0600 or 0644)",
                                    mode.c_str()));
    }
    return s;
}

void configure_from(const config::Config& config) {
    auto s = settings_from([&](std::string_view name) { return config.get(name); }, settings());
    if (!s.ok()) fatal("%s", s.error().c_str());
    configure(*s);
}

}  // namespace postern::log
