// The parts of the postconf command, one per concept; main.cc strings them together.
#pragma once

#include <string>
#include <vector>

#include "postconf/master_entry.h"
#include "postconf/options.h"
#include "postconf/param_space.h"

namespace postern::postconf {

// Everything a listing needs: the options, the config directory and the loaded files.
struct Context {
    Options opt;
    std::string config_dir;
    bool config_dir_given = false;  // -c or MAIL_CONFIG: config_directory counts as set
    std::vector<MasterEntry> master;
};

// main.cf parameters: all, or the named ones (postconf [-d|-n] [-h] [-x] [-f] [name...]).
// Returns the text for stdout; warnings go to the log as they happen.
std::string show_parameters(const Context& ctx, const ParamSpace& space);

// master.cf: -M entries, -F fields, -P -o parameters.
std::string show_master_entries(const Context& ctx, const ParamSpace& space);
std::string show_master_fields(const Context& ctx, const ParamSpace& space);
std::string show_master_params(const Context& ctx, const ParamSpace& space);

// -Me/-MX/-M#, -Fe, -Pe/-PX: edit master.cf in place. Fatal errors exit.
void edit_master(const Context& ctx);

// -m, -l, -a, -A, -T.
std::string show_table_types();
std::string show_lock_methods();
std::string show_sasl_types(bool server);
std::string show_tls(const std::string& what);

}  // namespace postern::postconf
