// postconf: Postfix configuration utility, a drop-in for postconf(1). main() picks the
// mode from the options, as Postfix's postconf.c does, and hands off to one part each.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "postconf/postconf.h"
#include "util/base/strings.h"
#include "util/config/main_cf_edit.h"
#include "util/log/log.h"

using namespace postern;
using namespace postern::postconf;

namespace {

void write_out(const std::string& text) {
    if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
        log::fatal("write error: standard output");
}

void read_master(Context& ctx, bool fail_on_open_error) {
    std::string path = ctx.config_dir + "/master.cf";
    auto mf = read_master_cf(path);
    if (!mf) {
        if (fail_on_open_error || !istarts_with(mf.error(), "open ")) log::fatal("%s", mf.error().c_str());
        log::warn("%s", mf.error().c_str());
        return;
    }
    for (const std::string& w : mf->warnings) log::warn("%s", w.c_str());
    ctx.master = std::move(mf->entries);
    log::debug("%s: %zu service entries", path.c_str(), ctx.master.size());
}

// main.cf as Postfix's CONFIG_DICT holds it: config_directory first when -c or
// MAIL_CONFIG names it, then the file's entries (a later one wins; Config::load warns
// about those), then -o overrides.
ValueMap read_main_values(const Context& ctx, const config::Config& cfg) {
    ValueMap values;
    bool dir_from_env = ctx.config_dir_given;
    if (dir_from_env) values["config_directory"] = ctx.config_dir;
    for (const config::ConfigEntry& e : cfg.entries()) {
        if (dir_from_env && e.name == "config_directory") {
            log::warn("%s/main.cf, line %d: overriding earlier entry: config_directory=%s", ctx.config_dir.c_str(),
                      e.line, ctx.config_dir.c_str());
            dir_from_env = false;
        }
        values[e.name] = e.value;
    }
    for (const std::string& o : ctx.opt.overrides) {
        auto nv = config::split_name_value(o);
        if (!nv) log::fatal("invalid parameter override: %s: %s", o.c_str(), nv.error().c_str());
        values[nv->name] = nv->value;
    }
    return values;
}

config::Config load_config(const Context& ctx) {
    auto cfg = config::Config::load(ctx.config_dir, "postconf");
    if (!cfg) log::fatal("%s", cfg.error().c_str());
    return std::move(*cfg);
}

// Builds the name space (built-in, service, user) the listing modes share. The master.cf
// modes have read master.cf already (a missing one is fatal there, and checked first).
ParamSpace build_space(Context& ctx, const config::Config& cfg, bool with_main, bool read_master_now) {
    ParamSpace space(cfg, with_main ? read_main_values(ctx, cfg) : ValueMap{}, ctx.config_dir);
    space.register_builtin();
    if (read_master_now) read_master(ctx, false);
    space.register_service(ctx.master);
    if (with_main) {
        std::vector<std::string> warnings;
        space.register_user(ctx.master, warnings);
        for (const std::string& w : warnings) log::warn("%s", w.c_str());
    }
    return space;
}

void warn_unused(const Context& ctx, const config::Config& cfg, const ParamSpace& space, bool main_too) {
    if (main_too)
        for (const std::string& w : space.unused_main_warnings(cfg.unused_names())) log::warn("%s", w.c_str());
    for (const std::string& w : space.unused_master_warnings(ctx.master)) log::warn("%s", w.c_str());
}

void edit_main(const Context& ctx) {
    config::MainCfEditMode mode = ctx.opt.has(kEditConf)    ? config::MainCfEditMode::Set
                                  : ctx.opt.has(kEditExcl) ? config::MainCfEditMode::Remove
                                                           : config::MainCfEditMode::CommentOut;
    std::vector<std::string> warnings;
    auto edits = config::parse_main_cf_edits(ctx.opt.args, mode, warnings);
    for (const std::string& w : warnings) log::warn("%s", w.c_str());
    if (!edits) log::fatal("%s", edits.error().c_str());
    log::debug("%s/main.cf: %zu edit request(s)", ctx.config_dir.c_str(), edits->size());
    auto done = config::edit_main_cf_file(ctx.config_dir + "/main.cf", mode, *edits);
    if (!done) log::fatal("%s", done.error().c_str());
    for (const std::string& w : *done) log::warn("%s", w.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    umask(022);
    log::init("postconf");
    log::Settings settings;
    settings.to_syslog = false;  // postconf reports to stderr only, as Postfix's does
    log::configure(settings);

    Context ctx;
    ctx.opt = parse_options(argc, argv);
    log::set_verbose(ctx.opt.verbose);
    if (ctx.opt.config_dir && setenv("MAIL_CONFIG", ctx.opt.config_dir->c_str(), 1) < 0)
        log::fatal("out of memory");
    ctx.config_dir = config::config_directory(nullptr);
    ctx.config_dir_given = std::getenv("MAIL_CONFIG") && *std::getenv("MAIL_CONFIG");
    const Options& opt = ctx.opt;
    constexpr unsigned kMasterModes = kMasterEntry | kMasterFld | kMasterParam;
    constexpr unsigned kEditModes = kEditConf | kEditExcl | kCommentOut;

    if (opt.has(kExpDsnTempl | kDumpDsnTempl)) {
        log::fatal("bounce templates (-b, -t) are not supported by Postern's postconf");
    } else if (opt.has(kShowMaps)) {
        (void)load_config(ctx);  // Postfix reads main.cf first, so a missing one is fatal here too
        write_out(show_table_types());
    } else if (opt.has(kShowLocks)) {
        write_out(show_lock_methods());
    } else if (opt.has(kMasterModes) && !opt.has(kEditModes)) {
        config::Config cfg = (read_master(ctx, true), load_config(ctx));
        ParamSpace space = build_space(ctx, cfg, true, false);
        if (opt.has(kMasterFld)) write_out(show_master_fields(ctx, space));
        else if (opt.has(kMasterParam)) write_out(show_master_params(ctx, space));
        else write_out(show_master_entries(ctx, space));
        warn_unused(ctx, cfg, space, false);
    } else if (opt.has(kShowSaslServ | kShowSaslClnt)) {
        write_out(show_sasl_types(opt.has(kShowSaslServ)));
    } else if (opt.has(kShowTls)) {
        write_out(show_tls(opt.tls_arg));
    } else if (opt.has(kEditModes)) {
        if (opt.args.empty()) log::fatal("missing service argument");
        if (opt.has(kMasterModes)) edit_master(ctx);
        else edit_main(ctx);
    } else {
        bool defaults = opt.has(kShowDefs);
        config::Config cfg = defaults ? config::Config() : load_config(ctx);
        ParamSpace space = build_space(ctx, cfg, !defaults, true);
        write_out(show_parameters(ctx, space));
        if (!defaults) warn_unused(ctx, cfg, space, true);
    }
    if (std::fflush(stdout) != 0) log::fatal("write error: standard output");
    return 0;
}
