// postconf [-d|-n] [-h|-H] [-x] [-f] [-C class] [name...]: main.cf parameters, sorted,
// as "name = value" with Postfix's whitespace normalization.
#include "postconf/postconf.h"
#include "postconf/print_line.h"
#include "util/log/log.h"

namespace postern::postconf {
namespace {

ShowMode show_mode(const Options& opt) {
    return ShowMode{opt.has(kShowDefs), opt.has(kShowNondef), opt.has(kShowEval)};
}

std::string format_parameter(const Options& opt, const ParamSpace& space, const std::string& name,
                             const ParamNode& node) {
    ShowMode mode = show_mode(opt);
    std::optional<std::string> value = space.value(name, node, mode);
    if (!value) return {};
    bool fold = opt.has(kFoldLine);
    if (opt.has(kHideValue)) return print_line(name, fold);
    if (mode.eval && !node.raw) value = space.expand(*value, mode);
    if (opt.has(kHideName)) return print_line(*value, fold);
    return print_line(name + " = " + *value, fold);
}

}  // namespace

std::string show_parameters(const Context& ctx, const ParamSpace& space) {
    std::string out;
    if (ctx.opt.args.empty()) {
        for (const std::string& name : space.names(ctx.opt.param_classes))
            out += format_parameter(ctx.opt, space, name, *space.find(name));
        return out;
    }
    for (const std::string& name : ctx.opt.args) {
        const ParamNode* node = space.find(name);
        if (!node) {
            log::warn("%s: unknown parameter", name.c_str());
            continue;
        }
        out += format_parameter(ctx.opt, space, name, *node);
    }
    return out;
}

}  // namespace postern::postconf
