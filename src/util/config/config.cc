// Config: main.cf entries, overrides and registry defaults, with Postfix's expansion and
// Postfix's typed conversions (mail_conf_int.c, mail_conf_bool.c, mail_conf_time.c,
// conv_time.c): the same accepted syntax and the same fatal texts.
#include "util/config/config.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <utility>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/config_expand.h"
#include "util/config/master_cf.h"
#include "util/config/param_registry.h"
#include "util/log/log.h"

#ifndef POSTERN_CONFIG_DIR
#define POSTERN_CONFIG_DIR "/etc/postern"
#endif

namespace postern::config {
namespace {

// strtol() as Postfix uses it: leading space and a sign allowed, `end` is the index of
// the first unconverted byte. False on overflow (ERANGE).
bool c_strtol(std::string_view s, long& value, size_t& end) {
    std::string tmp(s.substr(0, s.find('\0')));
    char* endp = nullptr;
    errno = 0;
    value = std::strtol(tmp.c_str(), &endp, 10);
    end = static_cast<size_t>(endp - tmp.c_str());
    // An embedded NUL ends the C string early: everything after it is unconverted.
    if (end == tmp.size() && tmp.size() < s.size()) end = tmp.size();
    return errno != ERANGE;
}

// Postfix parses a bare integer: the whole string must convert.
bool parse_whole_long(std::string_view s, long& value) {
    size_t end = 0;
    return !s.empty() && c_strtol(s, value, end) && end == s.size();
}

std::string join_warnings(const std::vector<std::string>& warnings, std::string_view tail) {
    std::string out;
    for (const std::string& w : warnings) {
        out += w;
        out += "; ";
    }
    out += tail;
    return out;
}

template <class T>
T or_fatal(Result<T> r) {
    if (!r.ok()) log::fatal("%s", r.error().c_str());
    return std::move(r).value();
}

Result<long> convert_int(std::string_view name, const std::string& text) {
    const ParamDef* def = find_param(name);
    bool is_long = def && def->type == ParamType::Long;
    long v = 0;
    if (!parse_whole_long(text, v) || (!is_long && (v < INT_MIN || v > INT_MAX)))
        return make_error(strprintf("bad numerical configuration: %.*s = %s",
                                    static_cast<int>(name.size()), name.data(), text.c_str()));
    if (def && def->min && v < def->min)
        return make_error(strprintf("invalid %.*s parameter value %ld < %ld",
                                    static_cast<int>(name.size()), name.data(), v, def->min));
    if (def && def->max && v > def->max)
        return make_error(strprintf("invalid %.*s parameter value %ld > %ld",
                                    static_cast<int>(name.size()), name.data(), v, def->max));
    return v;
}

Result<bool> convert_bool(std::string_view name, const std::string& text) {
    if (iequals(text, "yes")) return true;
    if (iequals(text, "no")) return false;
    return make_error(strprintf("bad boolean configuration: %.*s = %s",
                                static_cast<int>(name.size()), name.data(), text.c_str()));
}

Result<long> convert_time(std::string_view name, const std::string& text) {
    const ParamDef* def = find_param(name);
    auto v = parse_time_value(text, def ? def->time_unit : 's');
    if (!v)
        return make_error(strprintf("parameter %.*s: bad time value or unit: %s",
                                    static_cast<int>(name.size()), name.data(), text.c_str()));
    if (def && def->min && *v < def->min)
        return make_error(strprintf("invalid %.*s: %ld (min %ld)", static_cast<int>(name.size()),
                                    name.data(), *v, def->min));
    if (def && def->max && *v > def->max)
        return make_error(strprintf("invalid %.*s: %ld (max %ld)", static_cast<int>(name.size()),
                                    name.data(), *v, def->max));
    return *v;
}

}  // namespace

std::optional<long> parse_time_value(std::string_view value, char default_unit) {
    long v = 0;
    size_t end = 0;
    if (value.empty() || !c_strtol(value, v, end) || v < 0 || v > INT_MAX) return std::nullopt;
    if (end < value.size() && end + 1 != value.size()) return std::nullopt;
    constexpr long kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour, kWeek = 7 * kDay;
    long unit = 0;
    switch (end < value.size() ? value[end] : default_unit) {
        case 'w': unit = kWeek; break;
        case 'd': unit = kDay; break;
        case 'h': unit = kHour; break;
        case 'm': unit = kMinute; break;
        case 's': return v;
        default: return std::nullopt;
    }
    // Postfix's bound is strict (value < INT_MAX / unit).
    if (v >= INT_MAX / unit) return std::nullopt;
    return v * unit;
}

std::string config_directory(const char* dash_c_value) {
    if (dash_c_value && *dash_c_value) return dash_c_value;
    const char* env = std::getenv("MAIL_CONFIG");
    if (env && *env) return env;
    return POSTERN_CONFIG_DIR;
}

Config::Config() : config_dir_(config_directory(nullptr)) {}

Result<Config> Config::read(const std::string& config_dir, std::string_view process_name) {
    std::string path = config_dir + "/main.cf";
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    auto cfg = from_text(*text, path, process_name);
    if (!cfg) return cfg;
    cfg->config_dir_ = config_dir;
    return cfg;
}

Result<Config> Config::load(const std::string& config_dir, std::string_view process_name) {
    auto cfg = read(config_dir, process_name);
    if (cfg)
        for (const std::string& w : cfg->warnings_) log::warn("%s", w.c_str());
    return cfg;
}

Result<Config> Config::from_text(std::string_view text, std::string_view path,
                                 std::string_view process_name) {
    Config cfg;
    auto entries = parse_main_cf(text, path, cfg.warnings_);
    if (!entries) return make_error(entries.error());
    cfg.main_cf_path_ = std::string(path);
    cfg.config_dir_ = path.find('/') == std::string_view::npos ? cfg.config_dir_ : dirname_of(path);
    cfg.process_name_ = std::string(process_name);
    cfg.entries_ = std::move(*entries);
    // A later setting replaces an earlier one, as Postfix's dictionary update does.
    for (const ConfigEntry& e : cfg.entries_) {
        auto [it, inserted] = cfg.file_values_.try_emplace(e.name, e.value);
        if (inserted) continue;
        cfg.warnings_.push_back(strprintf("%.*s, line %d: overriding earlier entry: %s=%s",
                                          static_cast<int>(path.size()), path.data(), e.line,
                                          e.name.c_str(), it->second.c_str()));
        it->second = e.value;
    }
    return cfg;
}

void Config::set_override(std::string_view name, std::string_view value) {
    overrides_[std::string(name)] = std::string(value);
}

bool Config::is_set(std::string_view name) const {
    return overrides_.find(name) != overrides_.end() || file_values_.find(name) != file_values_.end();
}

std::optional<std::string> Config::raw(std::string_view name) const {
    if (auto it = overrides_.find(name); it != overrides_.end()) return it->second;
    if (auto it = file_values_.find(name); it != file_values_.end()) return it->second;
    return default_value(name);
}

std::string Config::get(std::string_view name) const {
    if (name == "mynetworks") return or_fatal(try_get(name));
    auto value = raw(name);
    if (!value) return std::string();
    const ParamDef* def = find_param(name);
    if (def && def->type == ParamType::Raw) return *value;
    return expand(*value);
}

Result<std::string> Config::try_get(std::string_view name) const {
    // The one derived default that can fail on input (a bad mynetworks_style).
    if (name == "mynetworks" && !is_set(name)) return derive_mynetworks();
    auto value = raw(name);
    if (!value) return std::string();
    const ParamDef* def = find_param(name);
    if (def && def->type == ParamType::Raw) return *value;
    return try_expand(*value);
}

// As Postfix programs do (mail_conf_eval): each warning, then the dictionary's fatal.
std::string Config::expand(std::string_view text) const {
    MacroLookup lookup = [this](std::string_view n) { return raw(n); };
    auto saved = std::exchange(derive_error_, std::nullopt);
    ++expanding_;
    ExpandOutcome out = expand_macros(text, lookup, true);
    --expanding_;
    auto derive_error = std::exchange(derive_error_, saved);
    if (out.error) {
        for (const std::string& w : out.warnings) log::warn("%s", w.c_str());
        log::fatal("dictionary mail_dict: macro processing error");
    }
    if (derive_error) log::fatal("%s", derive_error->c_str());
    return std::move(out.text);
}

Result<std::string> Config::try_expand(std::string_view text) const {
    MacroLookup lookup = [this](std::string_view n) { return raw(n); };
    auto saved = std::exchange(derive_error_, std::nullopt);
    ++expanding_;
    ExpandOutcome out = expand_macros(text, lookup, true);
    --expanding_;
    auto derive_error = std::exchange(derive_error_, saved);
    if (out.error) return make_error(join_warnings(out.warnings, "macro processing error"));
    if (derive_error) return make_error(*derive_error);
    return std::move(out.text);
}

// get_*: expansion errors are fatal the way get() reports them; conversion errors are
// fatal with the converter's text. try_get_*: both come back as the error.
long Config::get_int(std::string_view name) const { return or_fatal(convert_int(name, get(name))); }
bool Config::get_bool(std::string_view name) const { return or_fatal(convert_bool(name, get(name))); }
long Config::get_time(std::string_view name) const { return or_fatal(convert_time(name, get(name))); }

Result<long> Config::try_get_int(std::string_view name) const {
    auto text = try_get(name);
    if (!text) return make_error(text.error());
    return convert_int(name, *text);
}

Result<bool> Config::try_get_bool(std::string_view name) const {
    auto text = try_get(name);
    if (!text) return make_error(text.error());
    return convert_bool(name, *text);
}

Result<long> Config::try_get_time(std::string_view name) const {
    auto text = try_get(name);
    if (!text) return make_error(text.error());
    return convert_time(name, *text);
}

std::vector<std::string> Config::get_list(std::string_view name) const {
    std::string value = get(name);
    std::vector<std::string> out;
    // "{...}" groups stay whole, as Postfix's mystrtokq() with CHARS_BRACE keeps them:
    // "inline:{ {a=b}, {c=d} }" is one table.
    for (std::string_view t : split_outside_braces(value, " \t\r\n,")) out.emplace_back(t);
    return out;
}

}  // namespace postern::config
