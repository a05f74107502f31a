// Defaults Postfix computes at run time (mail_params.c, mynetworks.c, postconf_service.c)
// and the "unused parameter" logic of postconf (postconf_user.c, postconf_unused.c).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <set>

#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/config/config_expand.h"
#include "util/config/param_registry.h"
#include "util/log/log.h"

namespace postern::config {
namespace {

constexpr std::string_view kDefaultDomain = "localdomain";

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
    return buf;
}

// Postfix: the host name, with ".$mydomain" (or ".localdomain") when it has no dot.
std::string hostname_with_domain(std::string_view domain) {
    std::string name = host_name();
    if (name.find('.') == std::string::npos) name += "." + std::string(domain);
    return name;
}

// Postfix: everything after the first dot of myhostname, else "localdomain".
std::string domain_of(std::string_view hostname) {
    size_t dot = hostname.find('.');
    if (dot == std::string_view::npos || dot + 1 == hostname.size()) return std::string(kDefaultDomain);
    return std::string(hostname.substr(dot + 1));
}

enum class MaskStyle { Host, Subnet, Class };

// Network prefix length for one interface address under `style`.
int prefix_for(MaskStyle style, int family, const unsigned char* addr, int if_prefix) {
    if (style == MaskStyle::Host) return family == AF_INET ? 32 : 128;
    if (style == MaskStyle::Class && family == AF_INET) {
        unsigned char first = addr[0];
        if (first < 128) return 8;
        if (first < 192) return 16;
        if (first < 224) return 24;
        if (first < 240) return 4;  // class D (multicast)
        return 32;
    }
    return if_prefix;  // subnet, and "class" for IPv6, which has no classes
}

int mask_bits(const unsigned char* mask, size_t len) {
    int bits = 0;
    for (size_t i = 0; i < len; ++i)
        for (int b = 7; b >= 0; --b)
            if (mask[i] & (1u << b)) ++bits;
    return bits;
}

std::string format_network(int family, const unsigned char* addr, int prefix) {
    std::array<unsigned char, 16> net{};
    size_t len = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < len; ++i) {
        int keep = prefix - static_cast<int>(i) * 8;
        unsigned char m = keep >= 8 ? 0xff : keep <= 0 ? 0 : static_cast<unsigned char>(0xff << (8 - keep));
        net[i] = addr[i] & m;
    }
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, net.data(), text, sizeof(text));
    return family == AF_INET ? strprintf("%s/%d", text, prefix) : strprintf("[%s]/%d", text, prefix);
}

struct IfAddr {
    int family;
    std::array<unsigned char, 16> addr;
    int prefix;
};

std::vector<IfAddr> interface_addresses(int family) {
    std::vector<IfAddr> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return out;
    for (ifaddrs* ifa = list; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family) continue;
        IfAddr a{family, {}, family == AF_INET ? 32 : 128};
        if (family == AF_INET) {
            auto* sin = reinterpret_cast<const sockaddr_in*>(ifa->ifa_addr);
            std::memcpy(a.addr.data(), &sin->sin_addr, 4);
            if (ifa->ifa_netmask)
                a.prefix = mask_bits(reinterpret_cast<const unsigned char*>(
                                         &reinterpret_cast<const sockaddr_in*>(ifa->ifa_netmask)->sin_addr), 4);
        } else {
            auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ifa->ifa_addr);
            std::memcpy(a.addr.data(), &sin6->sin6_addr, 16);
            if (ifa->ifa_netmask)
                a.prefix = mask_bits(reinterpret_cast<const unsigned char*>(
                                         &reinterpret_cast<const sockaddr_in6*>(ifa->ifa_netmask)->sin6_addr), 16);
        }
        out.push_back(a);
    }
    freeifaddrs(list);
    return out;
}

// Per-transport parameters postconf derives from master.cf (postconf_service.c):
// suffix and the parameter its default refers to.
struct ServiceParam {
    std::string_view suffix;
    std::string_view default_param;
};
constexpr ServiceParam kTimeLimit = {"_time_limit", "command_time_limit"};
constexpr ServiceParam kDeliveryParams[] = {
    {"_recipient_limit", "default_recipient_limit"},
    {"_extra_recipient_limit", "default_extra_recipient_limit"},
    {"_recipient_refill_limit", "default_recipient_refill_limit"},
    {"_recipient_refill_delay", "default_recipient_refill_delay"},
    {"_delivery_slot_cost", "default_delivery_slot_cost"},
    {"_delivery_slot_loan", "default_delivery_slot_loan"},
    {"_delivery_slot_discount", "default_delivery_slot_discount"},
    {"_minimum_delivery_slots", "default_minimum_delivery_slots"},
    {"_initial_destination_concurrency", "initial_destination_concurrency"},
    {"_destination_concurrency_limit", "default_destination_concurrency_limit"},
    {"_destination_recipient_limit", "default_destination_recipient_limit"},
    {"_destination_concurrency_positive_feedback", "default_destination_concurrency_positive_feedback"},
    {"_destination_concurrency_negative_feedback", "default_destination_concurrency_negative_feedback"},
    {"_destination_concurrency_failed_cohort_limit", "default_destination_concurrency_failed_cohort_limit"},
    {"_destination_rate_delay", "default_destination_rate_delay"},
    {"_transport_rate_delay", "default_transport_rate_delay"},
};

// Restriction class names are parameters in their own right (postconf_user.c).
void add_restriction_classes(const Config& cfg, std::set<std::string, std::less<>>& used) {
    if (!cfg.raw("smtpd_restriction_classes")) return;
    auto classes = cfg.try_get("smtpd_restriction_classes");
    if (!classes) return;  // reported where the value is used
    for (std::string_view n : split_tokens(*classes, " \t\r\n,")) used.emplace(n);
}

}  // namespace

Result<std::string> compute_mynetworks(std::string_view style_text, std::string_view inet_protocols) {
    std::string style_name = lowercase(trim(style_text));
    MaskStyle style;
    if (style_name == "host") {
        style = MaskStyle::Host;
    } else if (style_name == "subnet") {
        style = MaskStyle::Subnet;
    } else if (style_name == "class") {
        style = MaskStyle::Class;
    } else {
        std::string shown(trim(style_text));
        return make_error(strprintf("unknown mynetworks mask style value \"%s\" in \"%s\"",
                                    shown.c_str(), shown.c_str()));
    }
    bool v4 = false, v6 = false;
    for (std::string_view p : split_tokens(inet_protocols, " \t\r\n,")) {
        if (iequals(p, "all")) v4 = v6 = true;
        if (iequals(p, "ipv4")) v4 = true;
        if (iequals(p, "ipv6")) v6 = true;
    }
    std::string out;
    for (int family : {AF_INET, AF_INET6}) {
        if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6)) continue;
        for (const IfAddr& a : interface_addresses(family)) {
            if (!out.empty()) out += ' ';
            out += format_network(family, a.addr.data(), prefix_for(style, family, a.addr.data(), a.prefix));
        }
    }
    return out;
}

std::optional<std::string> derived_default(std::string_view name, std::string_view process_name) {
    if (name == "myhostname") return hostname_with_domain(kDefaultDomain);
    if (name == "mydomain") return domain_of(hostname_with_domain(kDefaultDomain));
    if (name == "mynetworks") {
        auto r = compute_mynetworks("subnet", "all");
        return r ? std::optional<std::string>(*r) : std::nullopt;
    }
    if (name == "process_id") return std::to_string(static_cast<long>(getpid()));
    if (name == "process_name") return std::string(process_name.empty() ? log::program() : process_name);
    if (name == "config_directory") return config_directory(nullptr);
    return std::nullopt;
}

namespace {

// Marks a derived default as being computed for the guard's lifetime.
class DerivingGuard {
public:
    DerivingGuard(std::vector<std::string>& list, std::string_view name) : list_(list) {
        list_.emplace_back(name);
    }
    ~DerivingGuard() { list_.pop_back(); }
    DerivingGuard(const DerivingGuard&) = delete;
    DerivingGuard& operator=(const DerivingGuard&) = delete;

private:
    std::vector<std::string>& list_;
};

}  // namespace

Result<std::string> Config::derive_mynetworks() const {
    if (std::find(deriving_.begin(), deriving_.end(), "mynetworks") != deriving_.end()) return std::string();
    DerivingGuard guard(deriving_, "mynetworks");
    auto style = try_get("mynetworks_style");
    if (!style) return style;
    auto protocols = try_get("inet_protocols");
    if (!protocols) return protocols;
    return compute_mynetworks(*style, raw("inet_protocols") ? *protocols : "all");
}

std::optional<std::string> Config::default_value(std::string_view name) const {
    if (name == "config_directory") return config_dir_;
    if (name == "myhostname" || name == "mydomain" || name == "mynetworks") {
        if (std::find(deriving_.begin(), deriving_.end(), name) != deriving_.end()) return std::nullopt;
        auto note = [this](Result<std::string> r) {
            if (r.ok()) return std::move(r).value();
            if (expanding_ == 0) log::fatal("%s", r.error().c_str());  // a direct raw()/default_value()
            if (!derive_error_) derive_error_ = r.error();
            return std::string();
        };
        if (name == "mynetworks") return note(derive_mynetworks());
        DerivingGuard guard(deriving_, name);
        // Postfix completes a dotless host name with mydomain when main.cf sets it.
        if (name == "myhostname")
            return hostname_with_domain(is_set("mydomain") ? note(try_get("mydomain")) : std::string(kDefaultDomain));
        return domain_of(note(try_get("myhostname")));
    }
    // Postfix's defaults for these two, should the registry not carry them.
    if (name == "mynetworks_style" && !find_param(name))
        return "${{$compatibility_level} <level {2} ? {subnet} : {host}}";
    if (name == "compatibility_level" && !find_param(name)) return "0";
    if (auto d = derived_default(name, process_name_)) return d;
    if (const ParamDef* def = find_param(name)) return std::string(def->default_value);
    if (auto it = service_params_.find(name); it != service_params_.end()) return it->second;
    return std::nullopt;
}

void Config::add_master_service(std::string_view service, std::string_view command) {
    bool delivery = command == "local" || command == "error" || command == "virtual" ||
                    command == "smtp" || command == "lmtp";
    bool pipe = command == "pipe";
    auto add = [&](const ServiceParam& p) {
        std::string name = std::string(service) + std::string(p.suffix);
        // Built-in names (local_destination_concurrency_limit = 2) keep their default.
        if (!find_param(name)) service_params_[name] = "$" + std::string(p.default_param);
    };
    if (pipe || command == "spawn") add(kTimeLimit);
    if (delivery || pipe)
        for (const ServiceParam& p : kDeliveryParams) add(p);
}

void Config::add_master_service(const MasterService& service) {
    add_master_service(service.name, service.command);
    for (const MasterOverride& o : service.overrides) master_values_.push_back(o.value);
}

void Config::apply_master_overrides(const MasterService& service) {
    for (const MasterOverride& o : service.overrides) set_override(o.name, o.value);
}

std::vector<std::string> Config::unused_overrides(const MasterService& service) const {
    std::set<std::string, std::less<>> used;
    add_restriction_classes(*this, used);
    for (const MasterOverride& o : service.overrides) {
        const ParamDef* def = find_param(o.name);
        if (def && def->type == ParamType::Raw) continue;
        for (std::string& n : scan_macro_names(o.value)) used.insert(std::move(n));
    }
    std::vector<std::string> out;
    for (const MasterOverride& o : service.overrides) {
        if (find_param(o.name) || service_params_.count(o.name) || used.count(o.name)) continue;
        if (std::find(out.begin(), out.end(), o.name) == out.end()) out.push_back(o.name);
    }
    return out;
}

std::vector<std::string> Config::unused_names() const {
    std::set<std::string, std::less<>> used;
    auto scan = [&](std::string_view value) {
        for (std::string& n : scan_macro_names(value))
            if (file_values_.count(n)) used.insert(std::move(n));
    };
    add_restriction_classes(*this, used);
    // Defaults still in force may refer to legacy names ($virtual_maps and the like).
    for (const ParamDef& p : param_registry())
        if (p.type != ParamType::Raw && !file_values_.count(p.name)) scan(p.default_value);
    for (const auto& [name, value] : file_values_) {
        const ParamDef* def = find_param(name);
        if (def && def->type == ParamType::Raw) continue;
        scan(value);
    }
    for (const auto& [name, value] : overrides_) scan(value);
    for (const std::string& value : master_values_) scan(value);
    std::vector<std::string> out;
    for (const ConfigEntry& e : entries_) {
        if (find_param(e.name) || service_params_.count(e.name) || used.count(e.name)) continue;
        if (file_values_.at(e.name) != e.value) continue;  // report the setting in force once
        bool seen = false;
        for (const std::string& o : out) seen = seen || o == e.name;
        if (!seen) out.push_back(e.name);
    }
    return out;
}

std::vector<std::string> Config::undefined_names() const {
    std::vector<std::string> out;
    std::set<std::string, std::less<>> seen;
    for (const ConfigEntry& e : entries_) {
        const ParamDef* def = find_param(e.name);
        if (def && def->type == ParamType::Raw) continue;
        for (std::string& n : scan_macro_names(e.value)) {
            if (raw(n) || seen.count(n)) continue;
            seen.insert(n);
            out.push_back(std::move(n));
        }
    }
    return out;
}

}  // namespace postern::config
