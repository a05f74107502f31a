#include "util/dsn/status_filter.h"

#include "util/dsn/dsn_text.h"
#include "util/log/log.h"

namespace postern::dsn {

StatusFilter StatusFilter::from_config(const config::Config& config, std::string_view param) {
    StatusFilter f;
    f.param_ = std::string(param);
    f.soft_bounce_ = config.get_bool("soft_bounce");
    for (const auto& spec : config.get_list(param)) {
        auto t = table::open_table(spec);
        if (t)
            f.tables_.push_back(std::move(*t));
        else
            log::warn("%s: %s", f.param_.c_str(), t.error().c_str());
    }
    return f;
}

FinalStatus StatusFilter::apply(std::string_view status, std::string_view reason) const {
    FinalStatus out{std::string(status), std::string(reason), ""};
    bool success = !status.empty() && status[0] == '2';
    std::string key = out.status + " " + out.reason;
    for (const auto& t : tables_) {
        auto r = t->lookup(key);
        if (r.status == table::LookupResult::Status::Error) {
            log::warn("%s: %s lookup error for \"%s\": %s", param_.c_str(), t->spec().c_str(), key.c_str(),
                      r.error.c_str());
            break;
        }
        if (!r.found()) continue;
        SplitReason split = split_reason(r.value, "");
        bool ok = is_status_code(split.status) && (success ? split.status[0] == '2' : split.status[0] != '2');
        if (!ok) {
            log::warn("%s: bad status code: %s", param_.c_str(), r.value.c_str());
        } else {
            out.status = split.status;
            out.reason = split.text;
        }
        break;  // the first table that matches decides
    }
    char cls = out.status.empty() ? '4' : out.status[0];
    if (cls == '5' && soft_bounce_) {
        out.status[0] = '4';
        out.log_status = "SOFTBOUNCE";
    } else {
        out.log_status = cls == '2' ? "sent" : cls == '5' ? "bounced" : "deferred";
    }
    return out;
}

}  // namespace postern::dsn
