#include "postconf/param_space.h"

#include "util/base/strings.h"
#include "util/config/config_expand.h"
#include "util/config/param_registry.h"
#include "util/log/log.h"

namespace postern::postconf {
namespace {


struct ServiceParam {
    std::string_view suffix;
    std::string_view default_param;
};

// Per-transport parameters Postfix derives from master.cf service names
// (postconf_service.c); the first entry applies only to pipe and spawn.
constexpr ServiceParam kTransportParams[] = {
    {"_time_limit", "command_time_limit"},
    {"_delivery_slot_cost", "default_delivery_slot_cost"},
    {"_delivery_slot_discount", "default_delivery_slot_discount"},
    {"_delivery_slot_loan", "default_delivery_slot_loan"},
    {"_destination_concurrency_failed_cohort_limit", "default_destination_concurrency_failed_cohort_limit"},
    {"_destination_concurrency_limit", "default_destination_concurrency_limit"},
    {"_destination_concurrency_negative_feedback", "default_destination_concurrency_negative_feedback"},
    {"_destination_concurrency_positive_feedback", "default_destination_concurrency_positive_feedback"},
    {"_destination_rate_delay", "default_destination_rate_delay"},
    {"_destination_recipient_limit", "default_destination_recipient_limit"},
    {"_extra_recipient_limit", "default_extra_recipient_limit"},
    {"_initial_destination_concurrency", "initial_destination_concurrency"},
    {"_minimum_delivery_slots", "default_minimum_delivery_slots"},
    {"_recipient_limit", "default_recipient_limit"},
    {"_recipient_refill_delay", "default_recipient_refill_delay"},
    {"_recipient_refill_limit", "default_recipient_refill_limit"},
    {"_transport_rate_delay", "default_transport_rate_delay"},
};

// Which of kTransportParams a master.cf command gets: [first, last).
bool transport_param_range(std::string_view command, size_t& first, size_t& last) {
    constexpr size_t n = std::size(kTransportParams);
    if (command == "pipe") { first = 0; last = n; return true; }
    if (command == "spawn") { first = 0; last = 1; return true; }
    for (std::string_view c : {"local", "error", "virtual", "smtp", "lmtp"})
        if (command == c) { first = 1; last = n; return true; }
    return false;
}

// Names whose value Postfix sets per process; assignments are dropped with a warning.
bool is_read_only(std::string_view name) {
    return name == "process_id" || name == "process_name" || name == "service_name";
}

void drop_read_only(ValueMap& values, const std::string& file, std::vector<std::string>& warnings) {
    for (auto it = values.begin(); it != values.end();) {
        if (!is_read_only(it->first)) {
            ++it;
            continue;
        }
        warnings.push_back(strprintf("%s: read-only parameter assignment: %s=%s", file.c_str(), it->first.c_str(),
                                     it->second.c_str()));
        it = values.erase(it);
    }
}

}  // namespace

ParamSpace::ParamSpace(const config::Config& cfg, ValueMap main_values, std::string config_dir)
    : cfg_(cfg), main_(std::move(main_values)), config_dir_(std::move(config_dir)) {}

void ParamSpace::register_builtin() {
    for (const config::ParamDef& p : config::param_registry())
        nodes_[std::string(p.name)] = ParamNode{kBuiltin, p.type == config::ParamType::Raw, {}};
}

void ParamSpace::register_service(const std::vector<MasterEntry>& entries) {
    for (const MasterEntry& e : entries) {
        size_t first = 0, last = 0;
        if (!transport_param_range(e.argv[kFieldCommand], first, last)) continue;
        for (size_t i = first; i < last; ++i) {
            std::string name = e.service() + std::string(kTransportParams[i].suffix);
            auto it = nodes_.find(name);
            // A built-in name (local_destination_recipient_limit) keeps its own default.
            if (it != nodes_.end()) it->second.cls = kService;
            else nodes_[name] = ParamNode{kService, false, std::string(kTransportParams[i].default_param)};
        }
    }
}

void ParamSpace::flag_user_parameter(const std::string& name, int local, bool warn_undefined,
                                     std::vector<std::string>& warnings) {
    bool supplied = false;
    if (local >= 0 && local_params_[local].count(name)) {
        supplied = true;
        local_valid_[local].insert(name);
    } else if (main_.count(name)) {
        supplied = true;
        if (!nodes_.count(name)) nodes_[name] = ParamNode{kUser, false, {}};
    }
    if (local < 0) {
        for (size_t i = 0; i < local_params_.size(); ++i) {
            if (local_params_[i].count(name)) {
                supplied = true;
                local_valid_[i].insert(name);
            }
        }
    }
    if (!supplied && warn_undefined && !nodes_.count(name))
        warnings.push_back(strprintf("%s/%s: undefined parameter: %s", config_dir_.c_str(),
                                     local >= 0 ? "master.cf" : "main.cf", name.c_str()));
}

void ParamSpace::scan_namespace(const ValueMap& values, int local, const std::vector<MasterEntry>&,
                                std::vector<std::string>& warnings) {
    if (auto it = values.find("smtpd_restriction_classes"); it != values.end()) {
        ShowMode plain;
        std::string classes = expand(it->second, plain, local);
        for (std::string_view c : split_tokens(classes, ", \t\r\n")) {
            if (local < 0) restriction_classes_.insert(std::string(c));
            flag_user_parameter(std::string(c), local, true, warnings);
        }
    }
    for (const auto& [name, value] : values) {
        if (local >= 0 && restriction_classes_.count(name)) local_valid_[local].insert(name);
        if (const ParamNode* node = find(name); node && node->raw) continue;
        for (const std::string& ref : config::scan_macro_names(value))
            flag_user_parameter(ref, local, true, warnings);
        register_dbms(value, local, warnings);
    }
}

void ParamSpace::register_user(const std::vector<MasterEntry>& entries, std::vector<std::string>& warnings) {
    local_params_.clear();
    local_ro_.clear();
    local_valid_.assign(entries.size(), {});
    for (const MasterEntry& e : entries) {
        local_params_.push_back(e.params());
        drop_read_only(local_params_.back(), config_dir_ + "/master.cf", warnings);
        local_ro_.push_back(ValueMap{{"service_name", e.service()}, {"process_name", e.argv[kFieldCommand]}});
    }
    drop_read_only(main_, config_dir_ + "/main.cf", warnings);
    for (size_t i = 0; i < entries.size(); ++i)
        if (!local_params_[i].empty()) scan_namespace(local_params_[i], static_cast<int>(i), entries, warnings);
    // Defaults may name legacy parameters for compatibility; those names count as used.
    // Postfix would warn about an undefined name here only if its own table were
    // inconsistent, so we do not warn either.
    std::vector<std::string> defaults_refs;
    for (const auto& [name, node] : nodes_) {
        if (node.raw || main_.count(name)) continue;
        for (const std::string& ref : config::scan_macro_names(default_value(name, node)))
            defaults_refs.push_back(ref);
    }
    for (const std::string& ref : defaults_refs) flag_user_parameter(ref, -1, false, warnings);
    scan_namespace(main_, -1, entries, warnings);
}

const ParamNode* ParamSpace::find(std::string_view name) const {
    auto it = nodes_.find(name);
    return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<std::string> ParamSpace::names(unsigned classes) const {
    std::vector<std::string> out;
    for (const auto& [name, node] : nodes_)
        if (node.cls & classes) out.push_back(name);
    return out;
}

std::string ParamSpace::default_value(std::string_view name, const ParamNode& node) const {
    if (!node.service_default.empty()) return "$" + node.service_default;
    if (node.cls == kUser) return "";
    return cfg_.default_value(name).value_or("");
}

std::optional<std::string> ParamSpace::value(std::string_view name, const ParamNode& node,
                                             const ShowMode& mode) const {
    auto it = main_.find(name);
    if (mode.defaults || (it == main_.end() && !mode.nondefault)) return default_value(name, node);
    if (it == main_.end()) return std::nullopt;
    return it->second;
}

const ValueMap& ParamSpace::local_params(size_t entry) const {
    static const ValueMap kNone;
    return entry < local_params_.size() ? local_params_[entry] : kNone;
}

std::string ParamSpace::expand(std::string_view text, const ShowMode& mode, int local) const {
    ShowMode lookup_mode = mode;
    lookup_mode.nondefault = false;  // -n -x still expands names left at their defaults
    config::MacroLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
        if (local >= 0 && static_cast<size_t>(local) < local_ro_.size()) {
            if (auto it = local_ro_[local].find(name); it != local_ro_[local].end()) return it->second;
            if (auto it = local_params_[local].find(name); it != local_params_[local].end()) return it->second;
        }
        const ParamNode* node = find(name);
        if (!node) return std::nullopt;
        return value(name, *node, lookup_mode);
    };
    config::ExpandOutcome out = config::expand_macros(text, lookup, true);
    for (const std::string& w : out.warnings) log::warn("%s", w.c_str());
    if (out.error) log::fatal("macro processing error");
    return out.text;
}

std::vector<std::string> ParamSpace::unused_main_warnings(const std::vector<std::string>& candidates) const {
    std::vector<std::string> out;
    for (const std::string& name : candidates) {
        auto it = main_.find(name);
        if (it == main_.end() || nodes_.count(name)) continue;
        out.push_back(strprintf("%s/main.cf: unused parameter: %s=%s", config_dir_.c_str(), name.c_str(),
                                it->second.c_str()));
    }
    return out;
}

std::vector<std::string> ParamSpace::unused_master_warnings(const std::vector<MasterEntry>& entries) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < entries.size() && i < local_params_.size(); ++i) {
        for (const auto& [name, value] : local_params_[i]) {
            if (nodes_.count(name) || local_valid_[i].count(name)) continue;
            out.push_back(strprintf("%s/master.cf: unused parameter: %s=%s", config_dir_.c_str(),
                                    name.c_str(), value.c_str()));
        }
    }
    return out;
}

}  // namespace postern::postconf
