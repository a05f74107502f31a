// The parameter table: Postfix's defaults as `postconf -d` prints them (Postfix 3.7).
// Keep it sorted by name; a unit test checks the order and a differential test checks
// every default against Debian's postconf -d.
#include <algorithm>

#include "util/config/param_registry.h"

namespace postern::config {
namespace {

using T = ParamType;

constexpr ParamDef kParams[] = {
    {"alias_database", T::List, "hash:/etc/aliases", 0, 0, 's', "The alias databases that newaliases and sendmail -bi rebuild."},
    {"alias_maps", T::List, "hash:/etc/aliases, nis:mail.aliases", 0, 0, 's', "The alias databases used for local(8) delivery."},
    {"config_directory", T::String, "/etc/postern", 0, 0, 's', "The default location of the Postern main.cf and master.cf files."},
    {"mail_owner", T::String, "postfix", 0, 0, 's', "The UNIX system account that owns the queue and runs most daemons."},
    {"mydestination", T::List, "$myhostname, localhost.$mydomain, localhost", 0, 0, 's', "The domains this machine delivers locally."},
    {"mydomain", T::String, "", 0, 0, 's', "The internet domain name of this mail system (derived from myhostname)."},
    {"myhostname", T::String, "", 0, 0, 's', "The internet hostname of this mail system (derived from the host)."},
    {"myorigin", T::String, "$myhostname", 0, 0, 's', "The domain that locally-posted mail appears to come from."},
};

}  // namespace

std::span<const ParamDef> param_registry() { return kParams; }

const ParamDef* find_param(std::string_view name) {
    auto it = std::lower_bound(std::begin(kParams), std::end(kParams), name,
                               [](const ParamDef& p, std::string_view n) { return p.name < n; });
    return it != std::end(kParams) && it->name == name ? it : nullptr;
}

}  // namespace postern::config
